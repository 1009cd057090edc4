# Licensed under the Apache License, Version 2.0; see LICENSE.
#
# Helpers shared by the mod_scep Apache::Test files: the test PKI, SCEP
# requests, and openssl run on what the server answered.
package SCEPTest;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use File::Temp qw(tempdir);
use File::Spec;
use POSIX ();
use IO::Socket::INET;
use LWP::UserAgent;
use Test::More ();
use HTTP::Request;
use Apache::Test ();
use Apache::TestRequest ();

our @EXPORT = qw(
    pki tmpdir run slurp spew url scep_get scep_head scep_request
    pem_certs der_of pkcs7_certs cn_of cns asn1_has_no_econtent
    cms_signed_content cms_digest free_port try_httpd
);

# The device URL of the default NDES-style service.
our $MSCEP = '/certsrv/mscep/mscep.dll';

sub t_dir { Apache::Test::vars('t_dir') }

# pki NAME: a file of the test PKI (t/pki/mkpki t/pki-out).
sub pki { File::Spec->catfile(t_dir(), 'pki-out', @_) }

my $tmp;
sub tmpdir {
    $tmp //= tempdir('scep-test-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    return $tmp;
}

# run CMD...: (exit status, stdout and stderr together); stdin is /dev/null.
sub run {
    my @cmd = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        print "cannot run $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    my $rc = $? == -1 ? 255 : ($? & 127 ? 128 + ($? & 127) : $? >> 8);
    return wantarray ? ($rc, $out) : $out;
}

sub slurp {
    my $file = shift;
    open my $fh, '<:raw', $file or return undef;
    local $/;
    my $data = <$fh>;
    return $data;
}

sub spew {
    my ($file, $data) = @_;
    open my $fh, '>:raw', $file or die "write $file: $!";
    print $fh $data;
    close $fh or die "close $file: $!";
    return $file;
}

# url PATH: an absolute URL on the server (or vhost) currently selected
# with Apache::TestRequest::module.
sub url {
    my $path = shift;
    return 'http://' . Apache::TestRequest::hostport() . $path;
}

sub _query {
    my ($op, $message) = @_;
    my $q = defined $op ? "?operation=$op" : '';
    $q .= ($q ? '&' : '?') . "message=$message" if defined $message;
    return $q;
}

# scep_get BASE, OP[, MESSAGE]: GET BASE?operation=OP&message=MESSAGE
# (MESSAGE is used as given: escape it yourself).
sub scep_get {
    my ($base, $op, $message) = @_;
    return Apache::TestRequest::GET($base . _query($op, $message));
}

sub scep_head {
    my ($base, $op, $message) = @_;
    return Apache::TestRequest::HEAD($base . _query($op, $message));
}

# scep_request METHOD, PATH[, BODY[, HEADERS...]]: any method.
sub scep_request {
    my ($method, $path, $body, @headers) = @_;
    my $req = HTTP::Request->new($method => url($path), [@headers]);
    if (defined $body) {
        $req->content($body);
        $req->header('Content-Length' => length $body);
    }
    return Apache::TestRequest::user_agent()->request($req);
}

sub _norm {
    my $pem = shift;
    $pem =~ s/\s+//g;
    return $pem;
}

# pem_certs TEXT: the certificates of a PEM text, whitespace removed, so
# two encodings of the same DER compare equal.
sub pem_certs {
    my $text = shift;
    my @c = $text =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----)/sg;
    return map { _norm($_) } @c;
}

# der_of NAME: DER of the first certificate of a test PKI file.
sub der_of {
    my $name = shift;
    my $out = File::Spec->catfile(tmpdir(), "$name.der");
    my ($rc, $msg) = run('openssl', 'x509', '-in', pki("$name.pem"),
                         '-outform', 'DER', '-out', $out);
    die "openssl x509 $name: $msg" if $rc;
    return slurp($out);
}

# pkcs7_certs DER: the certificates of a certs-only PKCS#7, as normalized
# PEM; empty list if openssl cannot read it.
my $seq = 0;
sub pkcs7_certs {
    my $der = shift;
    my $in = spew(File::Spec->catfile(tmpdir(), 'p7-' . ++$seq . '.der'), $der);
    my ($rc, $out) = run('openssl', 'pkcs7', '-inform', 'DER', '-in', $in,
                         '-print_certs');
    return () if $rc;
    return pem_certs($out);
}

# The certificate of a test PKI file as normalized PEM.
sub _pki_pem {
    my $name = shift;
    my ($first) = pem_certs(slurp(pki("$name.pem")) // '');
    return $first // "missing $name";
}

# cn_of PEM: the CN of a (normalized) PEM certificate.
sub cn_of {
    my $pem = shift;
    my $body = $pem;
    $body =~ s/-----(BEGIN|END)CERTIFICATE-----//g;
    $body =~ s/(.{64})(?=.)/$1\n/g;
    my $in = spew(File::Spec->catfile(tmpdir(), 'cn-' . ++$seq . '.pem'),
        "-----BEGIN CERTIFICATE-----\n$body\n-----END CERTIFICATE-----\n");
    my $out = run('openssl', 'x509', '-in', $in, '-noout', '-subject',
                  '-nameopt', 'multiline');
    return $out =~ /commonName\s*=\s*(.+?)\s*$/m ? $1 : "(no CN: $out)";
}

# cns DER: sorted CNs of the certificates in a certs-only PKCS#7 (for
# readable test diagnostics); names of the test PKI files map to theirs.
sub cns {
    my @certs = @_;
    my %name_of;
    for my $n (@SCEPTest::PKI_NAMES) {
        $name_of{ _pki_pem($n) } = $n;
    }
    return sort map { $name_of{$_} // cn_of($_) } @certs;
}

our @PKI_NAMES = qw(
    ca ca-next ca2 subca foreign-ca ra-sign ra-enc ra-both ra-expiring
    ra-foreign ra-noeku ra2-sign ra2-enc ra-sub-sign ra-sub-enc
    store/sign-old store/sign-new store/enc-old store/enc-new store/noeku
    store/nokey store/foreign store/expired store/future
    store-both/sign-old store-both/enc-old store-both/both-new
);

# asn1_has_no_econtent DER: true when a certs-only SignedData has an
# encapContentInfo with eContentType data and no eContent at all (not
# even an empty [0] OCTET STRING).  Second value: the asn1parse dump.
sub asn1_has_no_econtent {
    my $der = shift;
    my $in = spew(File::Spec->catfile(tmpdir(), 'asn1-' . ++$seq . '.der'), $der);
    my ($rc, $out) = run('openssl', 'asn1parse', '-inform', 'DER', '-in', $in);
    return (0, $out) if $rc;
    my @lines = split /\n/, $out;
    for my $i (0 .. $#lines) {
        # the inner contentType (depth 4: ContentInfo, [0], SignedData,
        # EncapsulatedContentInfo, OID)
        next unless $lines[$i] =~ /d=(\d+).*:pkcs7-data\s*$/;
        my $depth = $1;
        my ($next) = ($lines[$i + 1] // '') =~ /d=(\d+)/;
        return ((defined $next && $next < $depth) ? 1 : 0, $out);
    }
    return (0, $out);
}

# cms_signed_content DER, SIGNER_PEM_FILE, CA_FILE: verify a SignedData
# (full chain to CA_FILE, any purpose) and return (ok, content, signer
# certs as normalized PEM, openssl output).
sub cms_signed_content {
    my ($der, $certfile, $cafile) = @_;
    my $n = ++$seq;
    my $dir = tmpdir();
    my $in = spew("$dir/cms-$n.der", $der);
    my @cmd = ('openssl', 'cms', '-verify', '-inform', 'DER', '-in', $in,
               '-binary', '-purpose', 'any', '-out', "$dir/cms-$n.out",
               '-signer', "$dir/cms-$n.signer");
    push @cmd, '-certfile', $certfile if $certfile;
    push @cmd, $cafile ? ('-CAfile', $cafile) : ('-noverify');
    my ($rc, $out) = run(@cmd);
    return (0, undef, [], $out) if $rc;
    return (1, slurp("$dir/cms-$n.out"),
            [pem_certs(slurp("$dir/cms-$n.signer") // '')], $out);
}

# cms_digest DER: the SignerInfo digest algorithm names (e.g. sha256).
sub cms_digest {
    my $der = shift;
    my $in = spew(File::Spec->catfile(tmpdir(), 'cmsp-' . ++$seq . '.der'), $der);
    my ($rc, $out) = run('openssl', 'cms', '-cmsout', '-print', '-inform',
                         'DER', '-in', $in);
    return () if $rc;
    # signerInfos: ... digestAlgorithm: \n algorithm: sha256 (...)
    my @alg = $out =~ /\bdigestAlgorithm:\s*\n\s*algorithm:\s*(\S+)/g;
    return @alg;
}

# free_port: a TCP port nobody listens on right now.
sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp', ReuseAddr => 1)
        or die "no free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# try_httpd SCEP_CONFIG[, PATH]: run an httpd of its own (the MPM and
# modules of this run, mod_scep) in the foreground with this
# configuration, GET PATH once it serves, stop it.  Returns a hash: dir
# (its ServerRoot), rc
# (its exit status when it did not start), started, out (its stdout and
# stderr), log (its error_log), res.  (-DFOREGROUND because with -k start
# httpd detaches before the module's checks and exits 0 either way.)
sub try_httpd {
    my ($scep_conf, $path) = @_;
    my $vars = Apache::Test::config()->{vars};
    my $httpd = $vars->{httpd};
    my $so = "$vars->{top_dir}/.libs/mod_scep.so";
    # the modules of this run (t/setup/MPM.conf, given with -httpd_conf)
    my $mpm_conf = $vars->{httpd_conf};
    my $dir = tempdir('httpd-XXXXXX', DIR => tmpdir());
    my $port = free_port();
    spew("$dir/mime.types", '');
    my $conf = spew("$dir/httpd.conf", <<CONF);
ServerRoot "$dir"
ServerName 127.0.0.1
Include "$mpm_conf"
LoadModule scep_module "$so"
Listen 127.0.0.1:$port
PidFile "$dir/httpd.pid"
ErrorLog "$dir/error_log"
LogLevel debug
DefaultRuntimeDir "$dir"
TypesConfig "$dir/mime.types"
$scep_conf
CONF
    my %r = (rc => undef, started => 0, dir => $dir);
    my $pid = fork() // die "fork: $!";
    if (!$pid) {
        # its own process group: prefork's parent stops its children
        # with killpg(getpgrp()), which would hit this test too
        POSIX::setsid();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$dir/out";
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec'; exec $httpd, '-f', $conf, '-DFOREGROUND'; }
        POSIX::_exit(127);
    }
    for (1 .. 150) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            $r{rc} = $? >> 8;
            last;
        }
        if (-s "$dir/httpd.pid"
            && IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")) {
            $r{started} = 1;
            last;
        }
        select(undef, undef, undef, 0.1);
    }
    if (!defined $r{rc}) {
        if ($r{started} && defined $path) {
            my $ua = LWP::UserAgent->new(timeout => 10);
            $r{res} = $ua->get("http://127.0.0.1:$port$path");
        }
        kill 'TERM', $pid;
        for (1 .. 100) {
            last if waitpid($pid, POSIX::WNOHANG()) == $pid;
            select(undef, undef, undef, 0.1);
        }
        if (kill 0, $pid) {
            Test::More::diag("httpd $pid in $dir did not stop; killing it");
            kill 'KILL', $pid;
            waitpid($pid, 0);
        }
    }
    $r{rc} //= 0;
    $r{out} = slurp("$dir/out") // '';
    $r{log} = slurp("$dir/error_log") // '';
    return \%r;
}

1;
