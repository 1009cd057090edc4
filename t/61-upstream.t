# Licensed under the Apache License, Version 2.0; see LICENSE.
# Submission provider scep: mod_scep as an RA in front of an upstream SCEP
# server (t/conf/upstream.conf.in).
#  - A chain: the RA in front of another mod_scep (enroll-ca's embedded
#    CA in the scep_upstream virtual host): the test client, strongSwan
#    pki and certmonger enroll through it; the certificate chains to
#    enroll-ca; a resent request and a poll get the same certificate and
#    the upstream issues one; a request held upstream for approval is
#    PENDING through the RA, then, approved, the next poll gets it.
#  - A pin (SCEPUpstreamCAFingerprint) no upstream certificate matches:
#    nothing is sent.
#  - micromdm's scepserver as the upstream (started here on upstream-ca):
#    enrollments through the RA; its single-DES answers refused without
#    SCEPAllowDES; stopped, the device gets PENDING and the log
#    says the request was not delivered; restarted, the device's poll
#    (the RA retries from its spool) and the same request succeed; its
#    depot holds one certificate per transaction.
#  - An upstream that takes the request and never answers: "maybe
#    delivered"; the request again is a CertPoll, never a second PKCSReq.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use Apache::Test qw(-withtestmore);
use File::Spec;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();
use SCEPTest;
use SCEPAdmin;
use SCEPEnroll qw(:DEFAULT serial_of logged reply_is);

admins_file();

my $O = 'mod_scep TEST ONLY';
my $CHAIN = '/upstream/chain/pkiclient.exe';
my $MANUAL = '/upstream/chain-manual/pkiclient.exe';
my $MDM = '/upstream/micromdm/pkiclient.exe';
my $pki = which_client('pki');
my $certmonger = which_client('certmonger');
my $getcert = which_client('getcert');
my $scepserver = which_client('scepserver');
ok($pki, 'strongSwan pki is installed (strongswan-pki)');
ok($certmonger && $getcert, 'certmonger is installed');
ok($scepserver, 'micromdm scepserver is installed (scep)');
ok(scepreq(), 'the test client t/tools/scepreq.c compiles');

my @K = new_keys(map { "u61-$_" } 1 .. 14);

# The ports upstream.conf.in's Defines got.
my %PORT;
{
    my $conf = slurp(File::Spec->catfile(Apache::Test::vars('t_conf'), 'upstream.conf')) // '';
    %PORT = $conf =~ /^Define SCEP_UPSTREAM_(\w+)_PORT (\d+)$/mg;
}
ok($PORT{PEER} && $PORT{HANG}, 'upstream.conf defines the ports of the scepserver and the fake');

sub req_with {
    my ($key, $cn, $path, %o) = @_;
    return enroll($key, path => $path, subject => [[O => $O], [CN => $cn]], %o);
}

sub resend {
    my ($e, $key, $path) = @_;
    return enroll($key, csr => $e->{csr}, transid => $e->{msg}{transid}, path => $path);
}

sub poll {
    my ($e, $key, $path, $ca) = @_;
    return enroll($key, msgtype => 20, transid => $e->{msg}{transid}, csr => $e->{csr},
                  content => iasubj_file(subject_from => $e->{csr}, ca => $ca // enroll_ca()),
                  path => $path);
}

# mdm KEY, OPTIONS: enroll at the RA in front of scepserver, whose RA
# certificates are upstream-ra-enc and upstream-ra-sign.
sub mdm {
    my ($key, %o) = @_;
    my $e = enroll($key, path => $MDM, ra_enc => pki('upstream-ra-enc.pem'), %o);
    return $e unless $e->{http}{code} == 200 && $e->{http}{ctype} eq 'application/x-pki-message';
    $e->{rep} = read_reply($e->{msg}, $e->{http}{body}, pki('upstream-ra-sign.pem'));
    $e->{status} = $e->{rep}{pkiStatus} // '?';
    delete $e->{cert};
    if ($e->{rep}{certs_file}) {
        my @c = (slurp($e->{rep}{certs_file}) // '')
            =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?)/sg;
        $e->{cert} = spew($e->{rep}{certs_file} . '.leaf.pem', $c[0]) if @c;
    }
    return $e;
}

sub issued_rows {
    my $cn = shift;
    return scalar db_query("SELECT serial FROM scep_issued WHERE subject LIKE '%$cn%'");
}

# --- a chain: mod_scep in front of mod_scep ---

{
    log_watch();
    my $e = req_with($K[0], 'upstream chain one', $CHAIN, password => enroll_password());
    my @log = log_lines(qr/SCEP00076/);
    reply_is($e, 0, undef, 'chain: the device gets SUCCESS through the RA');
    cert_ok($e->{cert}, 'chain: the certificate (chains to enroll-ca, the upstream CA)',
            key => $K[0], csr => $e->{csr});
    logged(qr/SCEP00208: transaction \Q$e->{msg}{transid}\E: PKCSReq to upstream http:\/\/127\.0\.0\.1:\d+\/ca\/pkiclient\.exe \(POST, AES-128-CBC, SHA256/,
           \@log, 'chain: the RA sent a PKCSReq of its own, POST, AES, SHA-256 (the upstream\'s capabilities)');
    logged(qr/SCEP00217: transaction \Q$e->{msg}{transid}\E: upstream .* issued serial/, \@log,
           'chain: the RA logs what the upstream issued');
    logged(qr/SCEP00076: issued: .*provider scep/, \@log, 'chain: the audit line names provider scep');
    is(issued_rows('upstream chain one'), 1, 'chain: the upstream CA issued it (its database)');

    my $again = resend($e, $K[0], $CHAIN);
    reply_is($again, 0, undef, 'chain: the same request again: SUCCESS');
    is(serial_of($again->{cert}), serial_of($e->{cert}), 'chain: with the same certificate');
    my $p = poll($e, $K[0], $CHAIN);
    reply_is($p, 0, undef, 'chain: CertPoll at the RA: SUCCESS');
    is(serial_of($p->{cert}), serial_of($e->{cert}), 'chain: the poll gets the same certificate');
    is(issued_rows('upstream chain one'), 1, 'chain: still one certificate upstream');

    my $other = poll($e, $K[1], $CHAIN);
    reply_is($other, 2, 4, 'chain: CertPoll signed by another key: FAILURE badCertId');
}

SKIP: {
    skip 'no pki', 1 unless $pki;
    my $d = tempdir('u61-pki-XXXXXX', DIR => tmpdir());
    my $url = enroll_url($CHAIN);
    my $pw = enroll_password();
    my ($rc, $err) = run_out("$d/cert.pem", 'timeout', '60', $pki, '--scep', '-u', $url,
        '-i', $K[2], '-d', "O=$O, CN=upstream pki", '-p', $pw,
        '--cacert-enc', ra_enc(), '--cacert-sig', ra_sign(), '--cacert', enroll_ca(),
        '--cipher', 'aes', '--digest', 'sha256', '--outform', 'pem');
    is($rc, 0, 'chain: strongSwan pki --scep succeeds through the RA') or diag($err);
    cert_ok("$d/cert.pem", 'chain: strongSwan pki: the certificate', key => $K[2],
            subject => "CN=upstream pki,O=$O");
}

SKIP: {
    skip 'no certmonger', 1 unless $certmonger && $getcert;
    my ($rc, $out, $d) = certmonger_request(enroll_url($CHAIN), 'upstream',
                                            "CN=upstream certmonger,O=$O", enroll_password());
    is($rc, 0, 'chain: certmonger (GET) enrolls through the RA') or diag($out);
    cert_ok("$d/cert.pem", 'chain: certmonger: the certificate', key => "$d/key.pem",
            subject => "O=$O,CN=upstream certmonger");
}

# --- held for approval upstream ---

{
    log_watch();
    my $e = req_with($K[3], 'upstream held', $MANUAL, password => enroll_password());
    reply_is($e, 3, undef, 'held upstream: the RA relays PENDING');
    is(scalar db_query("SELECT id FROM scep_pending WHERE state = 'pending' AND subject LIKE '%upstream held%'"), 1,
       'held upstream: the upstream CA keeps the request');
    my $p = poll($e, $K[3], $MANUAL);
    my @log = log_lines(qr/SCEP00218/);
    reply_is($p, 3, undef, 'held upstream: CertPoll at the RA: PENDING');
    logged(qr/SCEP00208: transaction \Q$e->{msg}{transid}\E: CertPoll to upstream/, \@log,
           'held upstream: the device\'s poll became the RA\'s CertPoll, same transaction');
    ok(!(grep { /SCEP00218/ } @log),
       'held upstream: mod_scep upstream answers the RA\'s own CertPoll (signed by the RA that sent the request): no resend')
        or diag(@log);

    my ($res, $j) = admin_json('/enroll/requests/', 'alice', base => enroll_base());
    my ($held) = grep { $_->{subject} =~ /CN=upstream held/ } @{ ($j // {})->{pending} || [] };
    ok($held, 'held upstream: listed on the approval page') or diag($res->content);
    my $body = join '&', map { "$_->[0]=$_->[1]" }
        (['action', 'approve'], ['id', $held ? $held->{id} : 0], ['token', $j ? $j->{csrf_token} : '']);
    my $r = admin_request('POST', '/enroll/requests/', 'alice', base => enroll_base(), json => 1,
                          body => $body, content_type => 'application/x-www-form-urlencoded');
    is($r->code, 200, 'held upstream: alice approves it') or diag($r->content);

    $p = poll($e, $K[3], $MANUAL);
    reply_is($p, 0, undef, 'held upstream, approved: the next CertPoll at the RA gets SUCCESS');
    cert_ok($p->{cert}, 'held upstream: the certificate', key => $K[3], csr => $e->{csr});
    is(issued_rows('upstream held'), 1, 'held upstream: one certificate upstream');
    my $again = poll($e, $K[3], $MANUAL);
    is(serial_of($again->{cert}), serial_of($p->{cert}), 'held upstream: polled again, the same certificate');
    is(issued_rows('upstream held'), 1, 'held upstream: still one certificate upstream');
}

# --- a pin that does not match ---

{
    log_watch();
    my $e = req_with($K[4], 'upstream pinned', '/upstream/pinned-wrong/pkiclient.exe',
                     password => enroll_password());
    my @log = log_lines(qr/SCEP00205/);
    isnt($e->{status}, 0, 'SCEPUpstreamCAFingerprint not matching: no certificate') or diag(enroll_diag($e));
    logged(qr/SCEP00205: .*refused, nothing delivered: none of its certificates has the SHA-256 fingerprint/, \@log,
           'SCEPUpstreamCAFingerprint not matching: the log says the upstream is refused');
    ok(!(grep { /SCEP00208/ } @log), 'SCEPUpstreamCAFingerprint not matching: nothing was sent');
    is(issued_rows('upstream pinned'), 0, 'SCEPUpstreamCAFingerprint not matching: nothing issued');
}

# --- micromdm's scepserver as the upstream ---

my ($peer_pid, $depot);

sub start_peer {
    my $log = File::Spec->catfile(tmpdir(), 'scepserver.log');
    my $pid = fork() // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec';
          exec $scepserver, '-depot', $depot, '-port', $PORT{PEER}, '-capass', 'upstream'; }
        POSIX::_exit(127);
    }
    for (1 .. 50) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $PORT{PEER}, Timeout => 1);
        if ($s) { close $s; return $pid }
        select(undef, undef, undef, 0.1);
    }
    diag(slurp($log) // '');
    return $pid;
}

sub stop_peer {
    return unless $peer_pid;
    kill 'TERM', $peer_pid;
    waitpid($peer_pid, 0);
    $peer_pid = undef;
}

# mdm_cert_ok FILE, NAME, KEY: a certificate of scepserver (its own
# profile: no basicConstraints, notBefore now): verifies against
# upstream-ca, for KEY.
sub mdm_cert_ok {
    my ($file, $name, $key) = @_;
    subtest $name => sub {
        ok($file && -s $file, 'a certificate came') or return;
        my ($rc, $out) = run('openssl', 'verify', '-CAfile', pki('upstream-ca.pem'), $file);
        is($rc, 0, 'openssl verify -CAfile upstream-ca.pem: OK') or diag($out);
        my ($krc, $kpub) = run('openssl', 'pkey', '-in', $key, '-pubout');
        is(cert_info($file)->{pubkey}, $kpub, 'its public key is the requested key');
    };
}

# The certificates scepserver issued: one file each in its depot.
sub depot_certs {
    my $cn = shift;
    my @n;
    for my $f (glob "$depot/*.pem") {
        next if $f =~ m{/ca\.pem$};
        my ($c) = cns(pem_certs(slurp($f) // ''));
        push @n, $f if defined $c && $c eq $cn;
    }
    return scalar @n;
}

SKIP: {
    skip 'no scepserver', 1 unless $scepserver && $PORT{PEER};
    $depot = tempdir('u61-depot-XXXXXX', DIR => tmpdir());
    # its depot: upstream-ca's certificate and key (encrypted, as
    # scepserver ca -init writes it)
    spew("$depot/ca.pem", slurp(pki('upstream-ca.pem')));
    my ($rc, $out) = run('openssl', 'rsa', '-traditional', '-des3', '-passout', 'pass:upstream',
                         '-in', pki('upstream-ca.key'), '-out', "$depot/ca.key");
    is($rc, 0, 'scepserver: its depot is made from upstream-ca') or diag($out);
    $peer_pid = start_peer();
    ok($peer_pid, "scepserver runs on port $PORT{PEER}");
    my $mdm_pw = sub {
        my ($r, $j) = admin_json('/upstream/micromdm-admin/', 'alice', base => enroll_base());
        return $j ? $j->{password} : die "no password: " . $r->as_string;
    };

    log_watch();
    my $e = mdm($K[5], subject => [[O => $O], [CN => 'upstream mdm one']], password => $mdm_pw->());
    my @log = log_lines(qr/SCEP00076|SCEP002/);
    reply_is($e, 0, undef, 'scepserver: the device gets SUCCESS through the RA');
    mdm_cert_ok($e->{cert}, 'scepserver: the certificate chains to the scepserver CA (upstream-ca)', $K[5]);
    is(depot_certs('upstream mdm one'), 1, 'scepserver: one certificate in its depot');
    my $again = mdm($K[5], csr => $e->{csr}, transid => $e->{msg}{transid});
    reply_is($again, 0, undef, 'scepserver: the same request again: SUCCESS');
    is(serial_of($again->{cert}), serial_of($e->{cert}), 'scepserver: the same certificate');
    is(depot_certs('upstream mdm one'), 1, 'scepserver: still one certificate in its depot (not sent again)');

    SKIP: {
        skip 'no pki', 1 unless $pki;
        my $d = tempdir('u61-mdm-pki-XXXXXX', DIR => tmpdir());
        my ($prc, $err) = run_out("$d/cert.pem", 'timeout', '60', $pki, '--scep', '-u', enroll_url($MDM),
            '-i', $K[6], '-d', "O=$O, CN=upstream mdm pki", '-p', $mdm_pw->(),
            '--cacert-enc', pki('upstream-ra-enc.pem'), '--cacert-sig', pki('upstream-ra-sign.pem'),
            '--cacert', pki('upstream-ca.pem'), '--cipher', 'aes', '--digest', 'sha256',
            '--outform', 'pem');
        is($prc, 0, 'scepserver: strongSwan pki --scep succeeds through the RA') or diag($err);
        mdm_cert_ok("$d/cert.pem", 'scepserver: strongSwan pki: the certificate', $K[6]);
    }

    # Without SCEPAllowDES the single-DES answer is refused; what the
    # upstream did is not known, so the request is not sent again.
    log_watch();
    my $nodes_pw = $mdm_pw->();
    my $n = mdm($K[7], subject => [[O => $O], [CN => 'upstream mdm nodes']],
                path => '/upstream/micromdm-nodes/pkiclient.exe', password => $nodes_pw);
    @log = log_lines(qr/SCEP00213/);
    isnt($n->{status}, 0, 'scepserver without SCEPAllowDES: no certificate');
    logged(qr/SCEP00213: .*single DES: SCEPAllowDES On accepts it/, \@log,
           'scepserver without SCEPAllowDES: the log says why (single DES)');
    log_watch();
    my $n2 = mdm($K[7], csr => $n->{csr}, transid => $n->{msg}{transid},
                 path => '/upstream/micromdm-nodes/pkiclient.exe');
    @log = log_lines(qr/SCEP0022[29]|SCEP0021[02]/);
    isnt($n2->{status}, 0, 'scepserver without SCEPAllowDES, again: no certificate');
    logged(qr/SCEP00222: .*not sending the request again/, \@log,
           'scepserver without SCEPAllowDES, again: a CertPoll, not the request again');
    is(depot_certs('upstream mdm nodes'), 1, 'scepserver without SCEPAllowDES: it issued once, not twice');

    # The upstream stops.
    stop_peer();
    log_watch();
    my $down_pw = $mdm_pw->();
    my $down = mdm($K[8], subject => [[O => $O], [CN => 'upstream mdm down']], password => $down_pw);
    @log = log_lines(qr/SCEP00(074|202|203|209)/);
    reply_is($down, 3, undef, 'scepserver stopped: the device gets PENDING (the RA keeps the request)');
    logged(qr/SCEP002(02|03|09): transaction \Q$down->{msg}{transid}\E: .*(not delivered|nothing delivered).*(cannot connect|refused)/i,
           \@log, 'scepserver stopped: the log names the fault: not delivered, cannot connect');

    $peer_pid = start_peer();
    # The RA kept the request (its spool); the device's poll retries it.
    my $polled = mdm($K[8], msgtype => 20, transid => $down->{msg}{transid}, csr => $down->{csr},
                     content => iasubj_file(subject_from => $down->{csr}, ca => pki('upstream-ca.pem')));
    reply_is($polled, 0, undef, 'scepserver restarted: the device\'s CertPoll gets SUCCESS');
    mdm_cert_ok($polled->{cert}, 'scepserver restarted: the certificate', $K[8]);
    my $up = mdm($K[8], csr => $down->{csr}, transid => $down->{msg}{transid});
    reply_is($up, 0, undef, 'scepserver restarted: the same request again: SUCCESS');
    is(serial_of($up->{cert}), serial_of($polled->{cert}), 'scepserver restarted: the same certificate');
    my $up2 = mdm($K[9], subject => [[O => $O], [CN => 'upstream mdm after']], password => $mdm_pw->());
    reply_is($up2, 0, undef, 'scepserver restarted: a new request succeeds');
    is(depot_certs('upstream mdm down'), 1, 'scepserver: one certificate for the transaction that met the outage');
    is(depot_certs('upstream mdm after'), 1, 'scepserver: one certificate for the next one');
    my @all = grep { !m{/ca\.pem$} } glob "$depot/*.pem";
    is(scalar @all, 5, 'scepserver: its depot holds five certificates for five transactions');
    stop_peer();
}

# --- an upstream that never answers ---

SKIP: {
    skip 'no port', 1 unless $PORT{HANG};
    my $dir = tempdir('u61-hang-XXXXXX', DIR => tmpdir());
    my $ca_der = der_of('enroll-ca');
    my $listen = IO::Socket::INET->new(Listen => 8, LocalAddr => '127.0.0.1',
                                       LocalPort => $PORT{HANG}, Proto => 'tcp', ReuseAddr => 1)
        or die "listen $PORT{HANG}: $!";
    my $fake = fork() // die "fork: $!";
    if (!$fake) {
        # One process per connection; PKIOperations are recorded, then
        # left without an answer.
        $SIG{CHLD} = 'IGNORE';
        my $n = 0;
        while (my $c = $listen->accept) {
            $n++;
            my $kid = fork();
            next if !defined $kid || $kid;
            binmode $c;
            my $head = '';
            while ($head !~ /\r\n\r\n/) {
                my $got = sysread($c, $head, 1, length $head) or last;
            }
            my ($target) = $head =~ m{^\w+ (\S+)};
            my ($len) = $head =~ /^Content-Length: (\d+)/mi;
            my $body = '';
            while (defined $len && length $body < $len) {
                sysread($c, $body, $len - length $body, length $body) or last;
            }
            $target //= '';
            if ($target =~ /operation=GetCACaps/) {
                my $caps = "AES\nPOSTPKIOperation\nSHA-256\n";
                print {$c} "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                    . length($caps) . "\r\n\r\n$caps";
            }
            elsif ($target =~ /operation=GetCACert/) {
                print {$c} "HTTP/1.0 200 OK\r\nContent-Type: application/x-x509-ca-cert\r\n"
                    . 'Content-Length: ' . length($ca_der) . "\r\n\r\n$ca_der";
            }
            else {
                spew("$dir/pkiop-$$-$n.der", $body);
                sleep 6;
            }
            close $c;
            POSIX::_exit(0);
        }
        POSIX::_exit(0);
    }
    close $listen;

    log_watch();
    my $pw = enroll_password();
    my $e = req_with($K[10], 'upstream hang', '/upstream/hang/pkiclient.exe', password => $pw);
    my @log = log_lines(qr/SCEP00210/);
    reply_is($e, 3, undef, 'no answer from the upstream: the device gets PENDING');
    logged(qr/SCEP00210: transaction \Q$e->{msg}{transid}\E: PKCSReq maybe delivered, no answer/, \@log,
           'no answer: the log says the PKCSReq may have been delivered');
    log_watch();
    my $e2 = enroll($K[10], csr => $e->{csr}, transid => $e->{msg}{transid},
                    path => '/upstream/hang/pkiclient.exe');
    @log = log_lines(qr/SCEP00210/);
    reply_is($e2, 3, undef, 'no answer, the request again: PENDING');
    logged(qr/SCEP00222: transaction \Q$e->{msg}{transid}\E: .*asking it with CertPoll, not sending the request again/,
           \@log, 'no answer, the request again: the RA polls first');
    logged(qr/SCEP00208: transaction \Q$e->{msg}{transid}\E: CertPoll to upstream/, \@log,
           'no answer, the request again: a CertPoll went upstream');
    ok(!(grep { /SCEP00208: transaction \Q$e->{msg}{transid}\E: PKCSReq/ } @log),
       'no answer, the request again: no second PKCSReq');
    my @got = glob "$dir/pkiop-*.der";
    is(scalar @got, 2, 'the fake upstream got two PKIOperations: the PKCSReq and a CertPoll');
    kill 'TERM', $fake;
    waitpid($fake, 0);
}

END { stop_peer() }

done_testing();
