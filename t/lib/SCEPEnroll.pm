# Licensed under the Apache License, Version 2.0; see LICENSE.
#
# Helpers for the enrollment tests (t/50-enroll.t, t/51-enroll-clients.t,
# t/52-provider.t, t/53-renewal.t, t/54-lifecycle.t): the scep_enroll
# virtual host of t/conf/extra.conf.in
# (CA enroll-ca, its embedded CA, the capture provider), one-time
# passwords from its admin page, device keys and PKCS#10 requests made
# with the openssl command, pkiMessages made and CertReps read by the
# test-only client t/tools/scepreq.c (compiled here, OpenSSL's CMS API,
# nothing shared with mod_scep), HTTP requests sent byte for byte, checks
# of issued certificates with openssl, the CA database and
# scripts/scepadm.
package SCEPEnroll;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use File::Spec;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();
use Time::Local qw(timegm);
use MIME::Base64 qw(encode_base64);
use Digest::SHA qw(sha256_hex);
use Test::More ();
use Apache::Test ();
use Apache::TestRequest ();
use SCEPTest;
use SCEPAdmin;

our @EXPORT_OK = qw(serial_of logged reply_is);
our @EXPORT = qw(
    enroll_base enroll_url enroll_password scepreq new_keys csr
    pkimessage send_message read_reply enroll cert_ok cert_info
    db_query transid enroll_ca ra_sign ra_enc which_client enroll_diag
    csr_subject to_ber run_out access_log_size access_log_since
    ias_file iasubj_file db_file scepadm serial_key certmonger_request
    $ENROLL_SCEP
);

# The device URL of the embedded CA with the defaults.
our $ENROLL_SCEP = '/enroll/scep/pkiclient.exe';

sub enroll_ca { pki('enroll-ca.pem') }
sub ra_sign   { pki('enroll-ra-sign.pem') }
sub ra_enc    { pki('enroll-ra-enc.pem') }

# enroll_base: http://host:port of the scep_enroll virtual host.
my $BASE;
sub enroll_base {
    return $BASE if $BASE;
    my $old = Apache::TestRequest::module();
    Apache::TestRequest::module('scep_enroll');
    $BASE = 'http://' . Apache::TestRequest::hostport();
    Apache::TestRequest::module($old // 'default');
    return $BASE;
}

sub enroll_url { enroll_base() . shift }

# enroll_password [PATH[, USER]]: a new one-time password from the JSON
# form of an admin page of the virtual host, as a script fetches it.
sub enroll_password {
    my ($path, $user) = @_;
    $path //= '/enroll/admin/';
    my ($res, $j) = admin_json($path, $user // 'alice', base => enroll_base());
    die "no password from $path: " . $res->as_string
        unless $res->code == 201 && $j && $j->{password};
    return $j->{password};
}

# which_client NAME, DIRS...: the first executable NAME in DIRS or $PATH.
sub which_client {
    my ($name, @dirs) = @_;
    for my $d (@dirs, split /:/, ($ENV{PATH} // '') . ':/usr/sbin:/usr/bin') {
        return "$d/$name" if -x "$d/$name";
    }
    return undef;
}

# scepreq: the test-only client, compiled once per test file.
my $SCEPREQ;
sub scepreq {
    return $SCEPREQ if $SCEPREQ;
    my $src = File::Spec->catfile(Apache::Test::vars('t_dir'), 'tools', 'scepreq.c');
    my $bin = File::Spec->catfile(tmpdir(), 'scepreq');
    my $cc = $ENV{CC} // 'cc';
    my ($rc, $out) = run($cc, '-O1', '-Wall', '-o', $bin, $src, '-lcrypto');
    die "cannot compile $src:\n$out" if $rc;
    return $SCEPREQ = $bin;
}

# new_keys NAME...: RSA keys (files in the temporary directory), made in
# parallel; 2048 bits, or as many as a NAME ending ":BITS" says.
# Returns the file names in order.
sub new_keys {
    my @names = @_;
    my (@files, @pids);
    for my $name (@names) {
        my ($n, $bits) = $name =~ /^(.*?)(?::(\d+))?$/;
        $bits ||= 2048;
        my $file = File::Spec->catfile(tmpdir(), "$n.key");
        push @files, $file;
        my $pid = fork() // die "fork: $!";
        if (!$pid) {
            open STDIN, '<', '/dev/null';
            open STDOUT, '>', '/dev/null';
            open STDERR, '>', '/dev/null';
            { no warnings 'exec';
              exec 'openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt',
                  "rsa_keygen_bits:$bits", '-out', $file; }
            POSIX::_exit(127);
        }
        push @pids, $pid;
    }
    for my $pid (@pids) {
        waitpid($pid, 0);
        die "openssl genpkey failed" if $?;
    }
    return wantarray ? @files : $files[0];
}

my $seq = 0;

# csr KEY, OPTIONS: a PKCS#10 (DER file) made by openssl req.
#   subject  => [[O => '...'], [CN => '...']]  (in this order)
#   password => challenge password (none when undef)
#   ext      => ['keyUsage = digitalSignature', ...]
#   sections => "[alt]\nURI.1 = ...\n"  (more config text)
sub csr {
    my ($key, %o) = @_;
    my $n = ++$seq;
    my $dir = tmpdir();
    my $subject = $o{subject} // [[O => 'mod_scep TEST ONLY'], [CN => "device $n"]];
    my %count;
    my $dn = join '', map {
        my ($k, $v) = @$_;
        # the same attribute twice needs a prefix in an openssl section
        my $i = $count{$k}++;
        ($i ? "$i.$k" : $k) . " = $v\n";
    } @$subject;
    my $cnf = "[req]\ndistinguished_name = dn\nprompt = no\n"
            . "string_mask = utf8only\n";
    $cnf .= "attributes = attrs\n" if defined $o{password};
    $cnf .= "req_extensions = ext\n" if $o{ext} && @{ $o{ext} };
    $cnf .= "[dn]\n$dn";
    $cnf .= "[attrs]\nchallengePassword = $o{password}\n" if defined $o{password};
    $cnf .= "[ext]\n" . join('', map { "$_\n" } @{ $o{ext} }) if $o{ext} && @{ $o{ext} };
    $cnf .= $o{sections} // '';
    my $cfile = spew("$dir/csr-$n.cnf", $cnf);
    my $out = "$dir/csr-$n.der";
    # -subj would drop the attributes (challengePassword): the subject
    # comes from the [dn] section
    my ($rc, $msg) = run('openssl', 'req', '-new', '-key', $key, '-config',
                         $cfile, '-outform', 'DER', '-out', $out);
    die "openssl req failed:\n$msg\n$cnf" if $rc;
    return $out;
}

# transid [PREFIX]: a fresh printable transaction ID.
sub transid {
    my $p = shift // 'T';
    return sprintf '%s-%d-%d-%04x%04x', $p, $$, ++$seq, int(rand 65536), int(rand 65536);
}

# pkimessage KEY, CSR, OPTIONS: a pkiMessage (DER) made by scepreq;
# returns a hash: msg (DER), state (file for read_reply), key (the
# signer's, which read_reply opens the reply with), transid.
#   transid => ID, cipher => aes128|aes256|des3|des, digest => sha256|...,
#   msgtype => 19, ra_enc => file, no_nonce => 1,
#   signer_cert => PEM file, signer_key => its key: signed under this
#   certificate (a renewal) instead of a fresh self-signed one,
#   content => DER file: this messageData instead of CSR (CertPoll,
#   GetCert, GetCRL: ias_file, iasubj_file); CSR may then be undef
sub pkimessage {
    my ($key, $csr, %o) = @_;
    my $n = ++$seq;
    my $dir = tmpdir();
    my $tid = $o{transid} // transid();
    my @cmd = (scepreq(), 'req', '--key', $key,
               '--ra-enc', $o{ra_enc} // ra_enc(), '--transid', $tid,
               '--cipher', $o{cipher} // 'aes128',
               '--digest', $o{digest} // 'sha256',
               '--msgtype', $o{msgtype} // '19',
               '--out', "$dir/msg-$n.der", '--state', "$dir/state-$n");
    push @cmd, '--csr', $csr if defined $csr;
    push @cmd, '--no-nonce' if $o{no_nonce};
    push @cmd, '--signer-cert', $o{signer_cert} if $o{signer_cert};
    push @cmd, '--signer-key', $o{signer_key} if $o{signer_key};
    push @cmd, '--content', $o{content} if $o{content};
    my ($rc, $out) = run(@cmd);
    die "scepreq req failed: $out" if $rc;
    return { msg => slurp("$dir/msg-$n.der"), state => "$dir/state-$n",
             key => $o{signer_key} // $key, transid => $tid, csr => $csr };
}

# ias_file CA => PEM, SERIAL => HEX | SERIAL_FROM => PEM: an
# IssuerAndSerialNumber (DER file) for GetCert and GetCRL, the issuer
# being CA's subject (default enroll-ca).
sub ias_file {
    my (%o) = @_;
    my $out = File::Spec->catfile(tmpdir(), 'ias-' . ++$seq . '.der');
    my @cmd = (scepreq(), 'ias', '--ca', $o{ca} // enroll_ca(), '--out', $out);
    push @cmd, defined $o{serial} ? ('--serial', $o{serial})
                                  : ('--serial-from', $o{serial_from});
    my ($rc, $msg) = run(@cmd);
    die "scepreq ias failed: $msg" if $rc;
    return $out;
}

# iasubj_file CA => PEM, SUBJECT_FROM => certificate or CSR file: an
# IssuerAndSubject (DER file) for CertPoll.
sub iasubj_file {
    my (%o) = @_;
    my $out = File::Spec->catfile(tmpdir(), 'iasubj-' . ++$seq . '.der');
    my ($rc, $msg) = run(scepreq(), 'iasubj', '--ca', $o{ca} // enroll_ca(),
                         '--subject-from', $o{subject_from}, '--out', $out);
    die "scepreq iasubj failed: $msg" if $rc;
    return $out;
}

# to_ber DER: the same pkiMessage in BER as Windows and Intune send it:
# indefinite lengths from the ContentInfo down to the eContent, and the
# eContent as a constructed OCTET STRING of 1000-byte pieces.  The
# signature stays valid (the content octets and the signed attributes
# are unchanged).
sub _tlv {
    my ($buf, $pos) = @_;
    my $tag = ord substr($buf, $pos, 1);
    my $l = ord substr($buf, $pos + 1, 1);
    my ($hl, $len) = (2, $l);
    if ($l & 0x80) {
        my $n = $l & 0x7f;
        $len = 0;
        $len = ($len << 8) | ord substr($buf, $pos + 2 + $_, 1) for 0 .. $n - 1;
        $hl += $n;
    }
    return ($tag, $hl, $len);
}

sub _children {
    my ($buf) = @_;
    my ($pos, @c) = (0);
    while ($pos < length $buf) {
        my ($tag, $hl, $len) = _tlv($buf, $pos);
        push @c, [$tag, substr($buf, $pos, $hl + $len), substr($buf, $pos + $hl, $len)];
        $pos += $hl + $len;
    }
    return @c;
}

sub _indef { my ($tag, @parts) = @_; return chr($tag) . "\x80" . join('', @parts) . "\0\0" }

sub _der_len {
    my $n = shift;
    return chr($n) if $n < 0x80;
    my $b = '';
    while ($n) { $b = chr($n & 0xff) . $b; $n >>= 8 }
    return chr(0x80 | length $b) . $b;
}

sub to_ber {
    my $der = shift;
    my ($ci) = _children($der);                      # ContentInfo
    my ($oid, $exp) = _children($ci->[2]);           # contentType, [0]
    my ($sd) = _children($exp->[2]);                 # SignedData
    my @sd = _children($sd->[2]);
    my @out;
    # version, digestAlgorithms, encapContentInfo, certificates, signerInfos
    for my $i (0 .. $#sd) {
        my $c = $sd[$i];
        if ($i == 2) {
            my ($eoid, $eexp) = _children($c->[2]); # encapContentInfo
            my ($octets) = _children($eexp->[2]);
            my $data = $octets->[2];
            my @pieces;
            push @pieces, "\x04" . _der_len(length $1) . $1 while $data =~ /\G(.{1,1000})/gs;
            push @out, _indef(0x30, $eoid->[1], _indef(0xa0, _indef(0x24, @pieces)));
        }
        else {
            push @out, $c->[1];
        }
    }
    return _indef(0x30, $oid->[1], _indef(0xa0, _indef(0x30, @out)));
}

# _http METHOD, TARGET, BODY, HEADERS, VERSION: one request on its own
# connection, written byte for byte (no client library re-encodes the
# query); returns a hash: code, ctype, headers (lower-case names), body,
# raw.
sub _http {
    my ($method, $target, $body, $headers, $version) = @_;
    $version //= '1.1';
    my ($host, $port) = enroll_base() =~ m{^http://([^:/]+):(\d+)};
    my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
                                  Proto => 'tcp', Timeout => 30)
        or die "connect $host:$port: $!";
    binmode $s;
    my $req = "$method $target HTTP/$version\r\nHost: $host:$port\r\n";
    $req .= "Connection: close\r\n" if $version eq '1.1';
    $req .= "$_\r\n" for @{ $headers || [] };
    $req .= 'Content-Length: ' . length($body) . "\r\n" if defined $body;
    $req .= "\r\n";
    $req .= $body if defined $body;
    print {$s} $req;
    local $/;
    my $raw = <$s> // '';
    close $s;
    my ($head, $content) = split /\r\n\r\n/, $raw, 2;
    my %r = (raw => $raw, body => $content // '', code => 0, ctype => '',
             headers => {}, target_length => length $target);
    my @lines = split /\r\n/, $head // '';
    my $status = shift @lines // '';
    ($r{code}) = $status =~ m{^HTTP/\d\.\d (\d{3})};
    $r{code} //= 0;
    $r{status_line} = $status;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $r{headers}{ lc $k } = $v;
    }
    $r{ctype} = $r{headers}{'content-type'} // '';
    if (($r{headers}{'transfer-encoding'} // '') =~ /chunked/i) {
        my ($in, $out) = ($r{body}, '');
        while ($in =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $out .= substr($in, 0, $len, '');
            $in =~ s/^\r\n//;
        }
        $r{body} = $out;
    }
    return \%r;
}

# send_message DER, OPTIONS: PKIOperation with this message.
#   path      => URL path (default $ENROLL_SCEP)
#   transport => post (Content-Type application/octet-stream, default),
#                post-pki (application/x-pki-message), post-noct (none),
#                post-http10 (HTTP/1.0, no Content-Type),
#                get-strongswan (base64 with %0A every 64 characters,
#                '+' as %2B, '/' and '=' raw), get-raw ('+', '/', '='
#                raw), get-url (base64url, no padding), get-escaped
#                (everything but letters and digits escaped),
#                get-sscep (%2B %2D %3D %0A, as sscep), get-http10;
#                any of them ending -ber: the message in BER (to_ber)
sub send_message {
    my ($der, %o) = @_;
    my $path = $o{path} // $ENROLL_SCEP;
    my $t = $o{transport} // 'post';
    my $target = "$path?operation=PKIOperation";
    # ...-ber: the message in BER (to_ber)
    $der = to_ber($der) if $t =~ s/-ber$//;
    if ($t =~ /^post/) {
        my @h;
        push @h, 'Content-Type: application/octet-stream' if $t eq 'post';
        push @h, 'Content-Type: application/x-pki-message' if $t eq 'post-pki';
        return _http('POST', $target, $der, \@h,
                     $t eq 'post-http10' ? '1.0' : '1.1');
    }
    my $b64 = encode_base64($der, '');
    my $m;
    if ($t eq 'get-strongswan') {
        ($m = $b64) =~ s/(.{64})/$1\n/g;
        $m =~ s/\+/%2B/g;
        $m =~ s/\n/%0A/g;
    }
    elsif ($t eq 'get-raw' || $t eq 'get-http10') {
        $m = $b64;
    }
    elsif ($t eq 'get-url') {
        ($m = $b64) =~ tr{+/}{-_};
        $m =~ s/=+$//;
    }
    elsif ($t eq 'get-escaped') {
        ($m = $b64) =~ s/([^A-Za-z0-9])/sprintf '%%%02X', ord $1/ge;
    }
    elsif ($t eq 'get-sscep') {
        ($m = $b64) =~ s/(.{64})/$1\n/g;
        $m =~ s/([+\-=\n])/sprintf '%%%02X', ord $1/ge;
    }
    else {
        die "unknown transport $t";
    }
    return _http('GET', "$target&message=$m", undef, [],
                 $t eq 'get-http10' ? '1.0' : '1.1');
}

# read_reply MESSAGE, BODY[, RA_SIGN]: the CertRep read by scepreq: a
# hash of its fields (verified, signer_is_ra, messageType, pkiStatus,
# failInfo, transactionID, recipientNonce_ok, digest, cipher, certs,
# crls...), and on SUCCESS certs_file (PEM: the issued certificate, then
# the chain) and crl_file (PEM, GetCRL); error => text when scepreq could
# not read it.
sub read_reply {
    my ($m, $body, $ra) = @_;
    my $n = ++$seq;
    my $dir = tmpdir();
    my $in = spew("$dir/rep-$n.der", $body // '');
    my $out = "$dir/rep-$n.pem";
    my $crl = "$dir/rep-$n.crl.pem";
    my ($rc, $text) = run(scepreq(), 'rep', '--in', $in, '--key', $m->{key},
                          '--state', $m->{state}, '--ra-sign', $ra // ra_sign(),
                          '--out', $out, '--crl-out', $crl);
    my %r = (text => $text);
    $r{error} = $text if $rc;
    for (split /\n/, $text) {
        $r{$1} = $2 if /^(\w+)=(.*)$/;
    }
    $r{certs_file} = $out if -s $out;
    $r{crl_file} = $crl if -s $crl;
    return \%r;
}

# enroll KEY, OPTIONS: csr, pkimessage, send_message, read_reply in one.
# OPTIONS: those of the four (subject, password, ext, sections; transid,
# cipher, digest, msgtype, signer_cert, signer_key, content; path,
# transport); with content no CSR is made.  Returns a hash: http (the
# answer), rep (read_reply), msg (pkimessage), csr (file), cert (PEM file
# of the issued certificate alone, on SUCCESS), chain, status (pkiStatus
# or 'HTTP nnn'), fail (failInfo).
sub enroll {
    my ($key, %o) = @_;
    my $csr = $o{csr} // ($o{content} ? undef
        : csr($key, map { exists $o{$_} ? ($_ => $o{$_}) : () }
                        qw(subject password ext sections)));
    my $m = pkimessage($key, $csr, map { exists $o{$_} ? ($_ => $o{$_}) : () }
                                     qw(transid cipher digest msgtype ra_enc
                                        signer_cert signer_key content));
    my $http = send_message($m->{msg}, map { exists $o{$_} ? ($_ => $o{$_}) : () }
                                           qw(path transport));
    my %e = (http => $http, msg => $m, csr => $csr);
    if ($http->{code} == 200 && $http->{ctype} eq 'application/x-pki-message') {
        $e{rep} = read_reply($m, $http->{body});
        $e{status} = $e{rep}{pkiStatus} // '?';
        $e{fail} = $e{rep}{failInfo};
        if ($e{rep}{certs_file}) {
            my @c = (slurp($e{rep}{certs_file}) // '')
                =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?)/sg;
            $e{cert} = spew($e{rep}{certs_file} . '.leaf.pem', $c[0]) if @c;
            $e{chain} = \@c;
        }
    }
    else {
        $e{rep} = {};
        $e{status} = "HTTP $http->{code} $http->{ctype}";
    }
    return \%e;
}

# enroll_diag ENROLL: a line for diagnostics.
sub enroll_diag {
    my $e = shift;
    my $r = $e->{rep} || {};
    return "status $e->{status}, failInfo " . ($r->{failInfo} // '-')
         . ", HTTP $e->{http}{status_line}, Content-Type $e->{http}{ctype}"
         . ($r->{error} ? ", scepreq: $r->{error}" : '');
}

# cert_info PEM_FILE: what openssl says about a certificate: subject
# (RFC 2253), serial (upper-case hex), notBefore (epoch), ku and eku (as
# openssl prints them), basic constraints, pubkey (PEM).
sub cert_info {
    my $file = shift;
    my %i;
    my ($rc, $out) = run('openssl', 'x509', '-in', $file, '-noout',
                         '-subject', '-nameopt', 'RFC2253', '-serial',
                         '-startdate', '-dateopt', 'iso_8601');
    return undef if $rc;
    ($i{subject}) = $out =~ /^subject=(.*)$/m;
    ($i{serial}) = $out =~ /^serial=([0-9A-Fa-f]+)$/m;
    $i{serial} = uc($i{serial} // '');
    $i{serial} =~ s/^0+(?=.)//;
    if ($out =~ /^notBefore=(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)Z$/m) {
        $i{not_before} = timegm($6, $5, $4, $3, $2 - 1, $1);
    }
    ($rc, $out) = run('openssl', 'x509', '-in', $file, '-noout', '-ext',
                      'keyUsage,extendedKeyUsage,basicConstraints');
    ($i{ku}) = $out =~ /X509v3 Key Usage:.*\n\s*(.+)/;
    ($i{eku}) = $out =~ /X509v3 Extended Key Usage:.*\n\s*(.+)/;
    ($i{bc}) = $out =~ /X509v3 Basic Constraints:.*\n\s*(.+)/;
    ($rc, $i{pubkey}) = run('openssl', 'x509', '-in', $file, '-noout', '-pubkey');
    return \%i;
}

# csr_subject CSR_DER: the subject of a request, RFC 2253.
sub csr_subject {
    my $csr = shift;
    my ($rc, $out) = run('openssl', 'req', '-in', $csr, '-inform', 'DER',
                         '-noout', '-subject', '-nameopt', 'RFC2253');
    my ($s) = $out =~ /^subject=(.*)$/m;
    return $s;
}

my %EKU_NAME = (
    'TLS Web Client Authentication' => 'clientAuth',
    'TLS Web Server Authentication' => 'serverAuth',
    'E-mail Protection' => 'emailProtection',
);

# cert_ok CERT_FILE, NAME, OPTIONS: a subtest on an issued certificate:
# it verifies against enroll-ca (openssl verify), its public key is
# KEY's, KeyUsage and EKU as given, subject as given (or as the CSR's),
# basicConstraints CA:FALSE, notBefore 10 minutes before now.
#   key => FILE, csr => DER file, subject => RFC 2253 text,
#   ku => 'Digital Signature, Key Encipherment', eku => [qw(...)]
# Returns cert_info.
sub cert_ok {
    my ($file, $name, %o) = @_;
    my $info;
    Test::More::subtest($name => sub {
        if (!$file || !-s $file) {
            Test::More::fail('a certificate was issued');
            return;
        }
        my ($rc, $out) = run('openssl', 'verify', '-CAfile', $o{ca} // enroll_ca(), $file);
        Test::More::is($rc, 0, 'openssl verify -CAfile enroll-ca.pem: OK')
            or Test::More::diag($out);
        $info = cert_info($file);
        if ($o{key}) {
            my ($krc, $kpub) = run('openssl', 'pkey', '-in', $o{key}, '-pubout');
            Test::More::is($info->{pubkey}, $kpub, 'its public key is the requested key');
        }
        my $want = $o{subject} // ($o{csr} ? csr_subject($o{csr}) : undef);
        Test::More::is($info->{subject}, $want, 'subject as requested')
            if defined $want;
        Test::More::is($info->{ku}, $o{ku} // 'Digital Signature, Key Encipherment',
                       'KeyUsage as the template says');
        my @eku = map { $EKU_NAME{$_} // $_ } split /,\s*/, $info->{eku} // '';
        Test::More::is_deeply([sort @eku], [sort @{ $o{eku} // ['1.3.6.1.5.5.8.2.2'] }],
                              'EKU as the template says');
        Test::More::is($info->{bc}, 'CA:FALSE', 'basicConstraints CA:FALSE');
        my $nb = $info->{not_before} // 0;
        Test::More::cmp_ok(abs($nb - (time - 600)), '<=', 90,
                           'notBefore about 10 minutes before now')
            or Test::More::diag('notBefore ' . gmtime($nb) . ', now ' . gmtime);
    });
    return $info;
}

# run_out FILE, CMD...: run CMD with stdout to FILE; (exit status,
# stderr).  stdin is /dev/null.
sub run_out {
    my ($file, @cmd) = @_;
    my $err = File::Spec->catfile(tmpdir(), 'stderr-' . ++$seq);
    my $pid = fork() // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $file or POSIX::_exit(126);
        open STDERR, '>', $err or POSIX::_exit(126);
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        print STDERR "cannot run $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    return ($rc, slurp($err) // '');
}

sub _access_log { File::Spec->catfile(Apache::Test::vars('t_logs'), 'access_log') }

# access_log_size; ...; access_log_since SIZE, REGEX: the access_log
# lines written after SIZE bytes, waiting up to 2 s for one matching
# REGEX (httpd writes the line just after the answer).
sub access_log_size { return -s _access_log() // 0 }

sub access_log_since {
    my ($size, $re) = @_;
    my $new = '';
    for (1 .. 20) {
        if (open my $fh, '<', _access_log()) {
            seek $fh, $size, 0;
            local $/;
            $new = <$fh> // '';
        }
        last if !$re || $new =~ $re;
        select(undef, undef, undef, 0.1);
    }
    return split /\n/, $new;
}

# db_file: the embedded CA's database (SCEPLocalCADatabase of the
# scep_enroll virtual host).
sub db_file { File::Spec->catfile(Apache::Test::vars('t_state'), 'enroll.db') }

# db_query SQL: rows of the embedded CA's database (sqlite3 command),
# each an array of columns ('|' separated by sqlite3).
sub db_query {
    my $sql = shift;
    my $db = db_file();
    my ($rc, $out) = run('sqlite3', '-batch', '-cmd', '.timeout 10000', $db, $sql);
    die "sqlite3 $db: $out" if $rc;
    return map { [split /\|/, $_, -1] } grep { length } split /\n/, $out;
}

# scepadm ARGS...: scripts/scepadm --db (the database) ARGS, run as the
# test user, who owns the database as httpd's children do; returns
# (exit status, stdout, stderr).
sub scepadm {
    my @args = @_;
    my $tool = File::Spec->catfile(Apache::Test::vars('top_dir'), 'scripts', 'scepadm');
    my $out = File::Spec->catfile(tmpdir(), 'scepadm-' . ++$seq . '.out');
    my ($rc, $err) = run_out($out, 'bash', $tool, '--db', db_file(), @args);
    return ($rc, slurp($out) // '', $err);
}

# serial_key HEX: a serial as the tests compare them: upper case, no
# colons, no leading zeros.
sub serial_key {
    (my $s = uc(shift // '')) =~ s/://g;
    $s =~ s/^0+(?=.)//;
    return $s;
}

# serial_of FILE: the certificate's serial, or 'none'.
sub serial_of {
    my $f = shift;
    my $i = ($f && -s $f) ? cert_info($f) : undef;
    return $i ? $i->{serial} : 'none';
}

# logged RE, LOG, NAME: one of the error_log lines matches.
sub logged {
    my ($re, $log, $name) = @_;
    Test::More::ok((grep { $_ =~ $re } @$log), $name) or Test::More::diag("no line matching $re in:\n", @$log);
}

# reply_is ENROLL, STATUS, FAILINFO, NAME: a CertRep signed by the RA,
# addressed to the request, with this pkiStatus and failInfo.
sub reply_is {
    my ($e, $status, $fail, $name) = @_;
    my $r = $e->{rep};
    Test::More::subtest($name => sub {
        Test::More::is($e->{http}{code}, 200, 'HTTP 200');
        Test::More::is($e->{http}{ctype}, 'application/x-pki-message', 'a CertRep');
        Test::More::is($r->{verified}, 1, 'signed by the RA');
        Test::More::is($r->{messageType}, 3, 'messageType CertRep (3)');
        Test::More::is($r->{transactionID}, $e->{msg}{transid}, 'transactionID copied');
        Test::More::is($r->{recipientNonce_ok}, 1, 'recipientNonce = our senderNonce');
        Test::More::is($r->{pkiStatus}, $status, "pkiStatus $status");
        Test::More::is($r->{failInfo}, $fail // '-', 'failInfo ' . ($fail // 'absent'));
    }) or Test::More::diag(enroll_diag($e), "\n", $r->{text} // '');
}


# certmonger_request URL, CA_NAME, SUBJECT, PASSWORD: certmonger as a
# private daemon (its own directories and socket, no system bus) adds URL
# as a SCEP CA and requests a certificate for SUBJECT, waiting for it
# (getcert request -w).  Returns (exit status, output, directory): the
# directory holds key.pem, cert.pem and certmonger's requests/.
sub certmonger_request {
    my ($url, $ca, $subject, $pw) = @_;
    my $certmonger = which_client('certmonger') or return (127, 'no certmonger', undef);
    my $d = tempdir('certmonger-XXXXXX', DIR => tmpdir());
    mkdir "$d/$_" or die "mkdir $d/$_: $!" for qw(requests cas tmp local config);
    spew("$d/run.sh", <<SH);
getcert add-scep-ca -c '$ca' -u '$url' || exit 10
getcert request -c '$ca' -k '$d/key.pem' -f '$d/cert.pem' -N '$subject' -L '$pw' -w -v
rc=\$?
getcert list
exit \$rc
SH
    local %ENV = (%ENV,
        CERTMONGER_REQUESTS_DIR => "$d/requests", CERTMONGER_CAS_DIR => "$d/cas",
        CERTMONGER_TMPDIR => "$d/tmp", CERTMONGER_LOCAL_CA_DIR => "$d/local",
        CERTMONGER_CONFIG_DIR => "$d/config", CERTMONGER_SYSTEM_LOCK_FILE => "$d/lock");
    my ($rc, $out) = run('timeout', '60', $certmonger, '-n', '-L', '-P', "$d/socket",
                         '-c', "sh $d/run.sh");
    return ($rc, $out, $d);
}

1;
