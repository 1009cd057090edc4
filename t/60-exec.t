# Licensed under the Apache License, Version 2.0; see LICENSE.
# The exec submission provider (mod_scep_ca_exec), t/conf/exec.conf.in:
# - /exec/openssl/: conf/examples/scep-openssl-ca driving openssl ca on
#   enroll-ca's key in t/state/exec-ca.  strongSwan pki, certmonger and
#   scepreq enroll; every certificate verifies against the CA and is in
#   index.txt; a resent request gets the same certificate; a held
#   request is PENDING until the administrator approves it, then a
#   CertPoll (scepreq) and strongSwan's own polling get it; a request the
#   policy refuses gets FAILURE badRequest; GetCert, GetCRL, renewal.
# - /exec/fake/: t/tools/exec-fake, which misbehaves as told: the
#   environment and files it gets, a hanging command killed at
#   SCEPExecTimeout 2 with its process group, garbage, a certificate for
#   another key, a crash, too much output, unknown exit codes.
# - examples/provider-hello, built with apxs against mod_scep.h, loads
#   into an httpd of its own and holds a request pending.
# The Locations are main-server ones, reached through the scep_enroll
# virtual host (its CA, RA and admin page).
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Spec;
use File::Temp qw(tempdir);
use File::Path qw(make_path);
use File::Copy qw(copy);
use POSIX ();
use Time::HiRes qw(time sleep);
use MIME::Base64 qw(encode_base64);
use Digest::SHA qw(sha256_hex);
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SCEPTest;
use SCEPAdmin;
use SCEPEnroll qw(:DEFAULT reply_is logged serial_of);

admins_file();

my $O = 'mod_scep TEST ONLY';
my $top = Apache::Test::vars('top_dir');
my $state = Apache::Test::vars('t_state');
my $script = File::Spec->catfile($top, 'conf', 'examples', 'scep-openssl-ca');
my $cadir = File::Spec->catdir($state, 'exec-ca');
my $fake = File::Spec->catdir($state, 'exec-fake');
my $spool = File::Spec->catdir($state, 'exec-spool');
my $OPENSSL = '/exec/openssl/pkiclient.exe';
my $FAKE = '/exec/fake/pkiclient.exe';

# The CA of the openssl example: enroll-ca, so that the scep_enroll
# virtual host's GetCACert and RA certificates go with it.
my ($rc, $out) = run($script, $cadir, 'init', enroll_ca(), pki('enroll-ca.key'));
is($rc, 0, 'scep-openssl-ca init makes the CA directory') or diag($out);
make_path($fake);

# ca ARGS: the example's administrator commands; (exit status, output).
sub ca { return run($script, $cadir, @_) }

# index_row SERIAL: the row of openssl's index.txt for a serial.
sub index_row {
    my $serial = serial_key(shift);
    for my $line (split /\n/, slurp("$cadir/index.txt") // '') {
        my @f = split /\t/, $line;
        return \@f if serial_key($f[3] // '') eq $serial;
    }
    return undef;
}

sub index_rows { return scalar grep { length } split /\n/, slurp("$cadir/index.txt") // '' }

sub in_index_ok {
    my ($cert, $name) = @_;
    my $row = index_row(serial_of($cert));
    ok($row && $row->[0] eq 'V', "$name: in openssl's index.txt, valid")
        or diag(slurp("$cadir/index.txt"));
}

# fake MODE: what t/tools/exec-fake does next.
sub fake { spew("$fake/mode", shift) }

# poll KEY, CSR, TRANSID, PATH: CertPoll signed by the request's key.
sub poll {
    my ($key, $csr, $tid, $path) = @_;
    return enroll($key, msgtype => 20, transid => $tid, csr => $csr,
                  content => iasubj_file(subject_from => $csr), path => $path);
}

my @K = new_keys(map { "x60-$_" } 1 .. 16);

# --- openssl ca: scepreq, a resend ------------------------------------

my ($first_cert, $first_key);
{
    my $pw = enroll_password();
    log_watch();
    my $e = enroll($K[0], password => $pw, path => $OPENSSL,
                   subject => [[O => $O], [CN => 'exec scepreq']]);
    my @log = log_lines(qr/SCEP00076/);
    reply_is($e, 0, undef, 'scepreq through openssl ca: SUCCESS');
    cert_ok($e->{cert}, 'scepreq through openssl ca: the certificate', key => $K[0],
            subject => "CN=exec scepreq,O=$O");
    is(scalar @{ $e->{chain} // [] }, 2, 'the certificate, then the CA');
    in_index_ok($e->{cert}, 'scepreq');
    logged(qr/SCEP00076: issued: .*subject CN=exec scepreq,O=\Q$O\E, .*provider exec, password from alice/,
           \@log, 'the audit line names provider exec');
    ($first_cert, $first_key) = ($e->{cert}, $K[0]);

    # the same message again: the password is spent, the command is asked
    # to look up the transaction, the same certificate comes back
    my $rows = index_rows();
    log_watch();
    my $http = send_message($e->{msg}{msg}, path => $OPENSSL);
    my $rep = read_reply($e->{msg}, $http->{body});
    @log = log_lines(qr/SCEP00086/);
    is($rep->{pkiStatus}, 0, 'the same request again: SUCCESS');
    my $again = $rep->{certs_file} ? spew("$rep->{certs_file}.leaf.pem",
        (pem_certs_text(slurp($rep->{certs_file})))[0]) : undef;
    is(serial_of($again), serial_of($e->{cert}), 'the same request again: the same certificate');
    is(index_rows(), $rows, 'the same request again: openssl ca issued nothing');
    logged(qr/SCEP00086: transaction \Q$e->{msg}{transid}\E: a resent request/, \@log,
           'the RA answered the resend from the lookup (SCEP00086)');
}

# pem_certs_text TEXT: the PEM certificates of a text, as they are.
sub pem_certs_text {
    return (shift // '') =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?)/sg;
}

# --- openssl ca: strongSwan pki ---------------------------------------

my $pki = which_client('pki');
ok($pki, 'strongSwan pki is installed (strongswan-pki)');
SKIP: {
    skip 'no pki', 3 unless $pki;
    my $d = tempdir('pki-XXXXXX', DIR => tmpdir());
    my $cn = 'exec pki';
    my ($prc, $err) = run_out("$d/cert.pem", 'timeout', '60', $pki, '--scep',
        '-u', enroll_url($OPENSSL), '-i', $K[1], '-d', "O=$O, CN=$cn",
        '-p', enroll_password(), '--cacert-enc', ra_enc(), '--cacert-sig', ra_sign(),
        '--cacert', enroll_ca(), '--outform', 'pem');
    is($prc, 0, 'pki --scep through openssl ca: succeeds') or diag($err);
    cert_ok("$d/cert.pem", 'pki --scep through openssl ca: the certificate', key => $K[1],
            subject => "CN=$cn,O=$O");
    in_index_ok("$d/cert.pem", 'pki --scep');
}

# --- openssl ca: certmonger -------------------------------------------

my $certmonger = which_client('certmonger');
my $getcert = which_client('getcert');
ok($certmonger && $getcert, 'certmonger and getcert are installed (certmonger)');
SKIP: {
    skip 'no certmonger', 3 unless $certmonger && $getcert;
    my ($crc, $cout, $d) = certmonger_request(enroll_url($OPENSSL), 'execca',
                                              "CN=exec certmonger,O=$O", enroll_password());
    is($crc, 0, 'certmonger through openssl ca: getcert request -w succeeds') or diag($cout);
    cert_ok("$d/cert.pem", 'certmonger through openssl ca: the certificate', key => "$d/key.pem",
            subject => "CN=exec certmonger,O=$O");
    in_index_ok("$d/cert.pem", 'certmonger');
}

# --- openssl ca: held for approval, CertPoll ---------------------------

{
    ca('hold', 'on');
    my $pw = enroll_password();
    my @spooled = glob "$spool/pending/*";
    log_watch();
    my $e = enroll($K[2], password => $pw, path => $OPENSSL,
                   subject => [[O => $O], [CN => 'exec held']]);
    my @log = log_lines(qr/SCEP02011/);
    reply_is($e, 3, undef, 'a held request: PENDING');
    my $tid = $e->{msg}{transid};
    my ($lrc, $list) = ca('list');
    my ($id) = $list =~ /^(req-[0-9a-f]+)\tCN=exec held,O=\Q$O\E$/m;
    ok($id, 'scep-openssl-ca list shows it') or diag($list);
    logged(qr/SCEP02011: .*transaction \Q$tid\E is pending as request \Q$id\E/, \@log,
           'SCEP02011: the request id is recorded') if $id;
    my @now = glob "$spool/pending/*";
    is(@now - @spooled, 1, 'one pending record in the spool');
    my ($rec) = grep { (slurp($_) // '') =~ /^transaction_id=\Q$tid\E$/m } glob "$spool/pending/*";
    like(slurp($rec // '') // '', qr/^request_id=\Q$id\E$/m, 'the record maps the transaction to the request id')
        if $id;

    my $p = poll($K[2], $e->{csr}, $tid, $OPENSSL);
    reply_is($p, 3, undef, 'CertPoll before approval: PENDING');

    # another key may not poll this transaction
    log_watch();
    $p = poll($K[3], csr($K[3], subject => [[O => $O], [CN => 'exec held']]), $tid, $OPENSSL);
    @log = log_lines(qr/SCEP02014/);
    reply_is($p, 2, 4, 'CertPoll signed by another key: FAILURE badCertId');
    logged(qr/SCEP02014: .*transaction \Q$tid\E signed by another key/, \@log, 'SCEP02014');

    my ($arc, $aout) = ca('approve', $id // 'none');
    is($arc, 0, 'scep-openssl-ca approve') or diag($aout);
    $p = poll($K[2], $e->{csr}, $tid, $OPENSSL);
    reply_is($p, 0, undef, 'CertPoll after approval: SUCCESS');
    cert_ok($p->{cert}, 'the approved certificate', key => $K[2], subject => "CN=exec held,O=$O");
    in_index_ok($p->{cert}, 'the approved certificate');

    # strongSwan pki polls by itself until the administrator approves
  SKIP: {
        skip 'no pki', 3 unless $pki;
        my $d = tempdir('pkipoll-XXXXXX', DIR => tmpdir());
        my $pw2 = enroll_password();
        my $pid = fork() // die "fork: $!";
        if (!$pid) {
            my ($prc) = run_out("$d/cert.pem", 'timeout', '90', $pki, '--scep',
                '-u', enroll_url($OPENSSL), '-i', $K[4], '-d', "O=$O, CN=exec pki polled",
                '-p', $pw2, '--cacert-enc', ra_enc(),
                '--cacert-sig', ra_sign(), '--cacert', enroll_ca(), '--outform', 'pem',
                '--interval', '1', '--maxpolltime', '80');
            POSIX::_exit($prc);
        }
        my $held;
        for (1 .. 300) {
            (undef, $list) = ca('list');
            ($held) = $list =~ /^(req-[0-9a-f]+)\tCN=exec pki polled/m;
            last if $held;
            sleep 0.2;
        }
        ok($held, 'pki --scep: its request is held');
        ca('approve', $held // 'none');
        waitpid($pid, 0);
        is($? >> 8, 0, 'pki --scep polled and got its certificate after the approval');
        cert_ok("$d/cert.pem", 'pki --scep after polling: the certificate', key => $K[4],
                subject => "CN=exec pki polled,O=$O");
    }
    ca('hold', 'off');
}

# --- openssl ca: the policy refuses -----------------------------------

{
    my $pw = enroll_password();
    log_watch();
    my $e = enroll($K[5], password => $pw, path => $OPENSSL,
                   subject => [[O => 'Somebody Else'], [CN => 'exec refused']]);
    my @log = log_lines(qr/SCEP00078/);
    reply_is($e, 2, 2, 'a request the policy refuses: FAILURE badRequest');
    logged(qr/SCEP00078: .*the CA refused the request: The organizationName field is different/,
           \@log, 'SCEP00078 with openssl\'s reason');
    $e = enroll($K[5], password => $pw, path => $OPENSSL,
                subject => [[O => $O], [CN => 'exec after refusal']]);
    reply_is($e, 0, undef, 'the refused request did not spend the password');
}

# --- openssl ca: GetCert, GetCRL, renewal ----------------------------

{
    my $e = enroll($first_key, msgtype => 21, content => ias_file(serial_from => $first_cert),
                   signer_cert => $first_cert, signer_key => $first_key, path => $OPENSSL);
    reply_is($e, 0, undef, 'GetCert: SUCCESS');
    is(serial_of($e->{cert}), serial_of($first_cert), 'GetCert: the certificate asked for');

    $e = enroll($first_key, msgtype => 21, content => ias_file(serial => '0123456789'),
                signer_cert => $first_cert, signer_key => $first_key, path => $OPENSSL);
    reply_is($e, 2, 4, 'GetCert of an unknown serial: FAILURE badCertId');

    # renewal: certstatus says good; the renewal is a new certificate
    my $r = enroll($K[6], msgtype => 17, signer_cert => $first_cert, signer_key => $first_key,
                   subject => [[O => $O], [CN => 'exec scepreq']], path => $OPENSSL);
    reply_is($r, 0, undef, 'RenewalReq signed by an issued certificate: SUCCESS');
    cert_ok($r->{cert}, 'the renewed certificate', key => $K[6], subject => "CN=exec scepreq,O=$O");
    isnt(serial_of($r->{cert}), serial_of($first_cert), 'a new serial');

    # revoked in openssl's database: in the CRL, and no more renewals
    my ($vrc, $vout) = ca('revoke', serial_of($first_cert), 'keyCompromise');
    is($vrc, 0, 'scep-openssl-ca revoke') or diag($vout);
    $e = enroll($first_key, msgtype => 22, content => ias_file(serial_from => $first_cert),
                signer_cert => $first_cert, signer_key => $first_key, path => $OPENSSL);
    reply_is($e, 0, undef, 'GetCRL: SUCCESS');
    my ($crc, $crl) = $e->{rep}{crl_file}
        ? run('openssl', 'crl', '-in', $e->{rep}{crl_file}, '-CAfile', enroll_ca(), '-noout', '-text')
        : (1, 'no CRL');
    is($crc, 0, 'GetCRL: the CRL verifies against the CA') or diag($crl);
    my $sn = serial_of($first_cert);
    like($crl, qr/Serial Number: 0*\Q$sn\E\b/i, 'GetCRL: the revoked certificate is in it');
    log_watch();
    $r = enroll($K[7], msgtype => 17, signer_cert => $first_cert, signer_key => $first_key,
                subject => [[O => $O], [CN => 'exec scepreq']], path => $OPENSSL);
    my @log = log_lines(qr/SCEP00088/);
    reply_is($r, 2, 2, 'RenewalReq signed by a revoked certificate: FAILURE badRequest');
    logged(qr/SCEP00088: .*revoked/, \@log, 'SCEP00088: the signer is revoked (certstatus)');
}

# --- the fake command: environment, files, answers --------------------

{
    fake('env');
    my $pw = enroll_password();
    log_watch();
    my $e = enroll($K[8], password => $pw, path => $FAKE,
                   subject => [[O => $O], [CN => 'exec fake']],
                   ext => ['keyUsage = digitalSignature']);
    my @log = log_lines(qr/SCEP00078/);
    reply_is($e, 2, 3, 'exit 77 "badTime: ...": FAILURE badTime');
    logged(qr/SCEP00078: .*the CA refused the request: fake says no \(exec: enroll\)/, \@log,
           'SCEP00078 with the command\'s reason');
    logged(qr/SCEP02010: .*stderr: fake stderr line/, \@log, 'SCEP02010: its stderr is logged');
    my $tid = $e->{msg}{transid};
    my %env = map { /^([^=]+)=(.*)$/ ? ($1 => $2) : () } split /\n/, slurp("$fake/last/env") // '';
    is_deeply([sort grep { !/^SCEP_/ && $_ ne 'PWD' && $_ ne 'SHLVL' && $_ ne '_' } keys %env],
              ['PATH'], 'a clean environment: PATH and SCEP_* only') or diag(explain(\%env));
    is($env{SCEP_OPERATION}, 'enroll', 'SCEP_OPERATION enroll');
    is($env{SCEP_TRANSACTION_ID}, $tid, 'SCEP_TRANSACTION_ID');
    is($env{SCEP_TRANSACTION_HASH}, sha256_hex($tid), 'SCEP_TRANSACTION_HASH: its SHA-256');
    is($env{SCEP_TEMPLATE}, 'IPSECIntermediateOffline', 'SCEP_TEMPLATE');
    is($env{SCEP_KEY_USAGE}, 'digitalSignature', 'SCEP_KEY_USAGE');
    is($env{SCEP_SUBJECT}, "CN=exec fake,O=$O", 'SCEP_SUBJECT (RFC 2253)');
    is($env{SCEP_REQUESTER}, 'alice', 'SCEP_REQUESTER: who issued the password');
    is($env{SCEP_CLIENT_IP}, '127.0.0.1', 'SCEP_CLIENT_IP');
    is($env{SCEP_URI}, $FAKE, 'SCEP_URI');
    is($env{SCEP_RETRY}, '0', 'SCEP_RETRY 0: a first submission');
    my ($krc, $spki) = run('openssl', 'pkey', '-in', $K[8], '-pubout', '-outform', 'DER',
                           '-out', File::Spec->catfile(tmpdir(), 'x60-spki.der'));
    is($env{SCEP_KEY_ID}, sha256_hex(slurp(File::Spec->catfile(tmpdir(), 'x60-spki.der')) // ''),
       'SCEP_KEY_ID: SHA-256 of the key');
    ok(!exists $env{SCEP_RENEWAL_SIGNER}, 'no SCEP_RENEWAL_SIGNER for an enrollment');
    is(slurp("$fake/last/cwd"), "$env{SCEP_WORK_DIR}\n", 'it runs in SCEP_WORK_DIR');
    is(slurp("$fake/last/pgid"), slurp("$fake/last/pid"), 'it leads a process group of its own');
    my $fds = slurp("$fake/last/fds") // '';
    ok($fds =~ /\b0 -> / && $fds !~ /socket:|error_log|access_log/,
       'it holds no descriptor of httpd\'s (sockets, logs)') or diag($fds);
    ok(!-e $env{SCEP_WORK_DIR}, 'the work directory is removed after the run');
    is(slurp("$fake/last/argv"), join("\n", "$top/t/tools/exec-fake", $fake, ''),
       'argv: the command and its argument, as configured');
    my $csr_pem = slurp("$fake/last/csr.pem") // '';
    is(slurp("$fake/last/stdin"), $csr_pem, 'stdin: the CSR, as SCEP_CSR_FILE');
    my $csr_der = File::Spec->catfile(tmpdir(), 'x60-csr.der');
    run('openssl', 'req', '-in', "$fake/last/csr.pem", '-outform', 'DER', '-out', $csr_der);
    is(slurp($csr_der), slurp($e->{csr}), 'SCEP_CSR_FILE: the device\'s PKCS#10 (PEM)');
    like(slurp("$fake/last/ra.pem") // '', qr/^-----BEGIN PKCS7-----/, 'SCEP_RA_REQUEST_FILE: PEM');
    my $ra_der = File::Spec->catfile(tmpdir(), 'x60-ra.der');
    run('openssl', 'pkcs7', '-in', "$fake/last/ra.pem", '-outform', 'DER', '-out', $ra_der);
    my ($ok, $content, $signers) = cms_signed_content(slurp($ra_der) // '', undef, enroll_ca());
    ok($ok, 'SCEP_RA_REQUEST_FILE: a SignedData that verifies against the CA');
    is($content, slurp($e->{csr}), 'SCEP_RA_REQUEST_FILE: over the device\'s PKCS#10');
    is_deeply($signers, [pem_certs(slurp(ra_sign()))], 'SCEP_RA_REQUEST_FILE: signed by the RA');

    # pending, then a poll: the request id comes back as SCEP_REQUEST_ID
    fake('pending');
    $e = enroll($K[8], password => $pw, path => $FAKE,
                subject => [[O => $O], [CN => 'exec fake pending']]);
    reply_is($e, 3, undef, 'exit 75: PENDING (the password was not spent by the refusal)');
    fake('env');
    my $p = poll($K[8], $e->{csr}, $e->{msg}{transid}, $FAKE);
    reply_is($p, 2, 3, 'CertPoll: the command\'s answer (badTime)');
    %env = map { /^([^=]+)=(.*)$/ ? ($1 => $2) : () } split /\n/, slurp("$fake/last/env") // '';
    is($env{SCEP_OPERATION}, 'poll', 'CertPoll: SCEP_OPERATION poll');
    is($env{SCEP_REQUEST_ID}, 'fake-request-42', 'CertPoll: SCEP_REQUEST_ID from the spool');
    is($env{SCEP_TRANSACTION_ID}, $e->{msg}{transid}, 'CertPoll: SCEP_TRANSACTION_ID');
}

# --- the fake command: faults -------------------------------------------

# proc_alive PID: a process that exists and is not a zombie.
sub proc_alive {
    my $pid = shift;
    my $stat = slurp("/proc/$pid/stat") // return 0;
    my ($st) = $stat =~ /\) (\S)/;
    return ($st // 'Z') ne 'Z';
}

# group_members PGID: live processes of a process group.
sub group_members {
    my $pgid = shift;
    my @m;
    for my $f (glob '/proc/[0-9]*/stat') {
        my $stat = slurp($f) // next;
        my ($st, $pgrp) = $stat =~ /\) (\S) \d+ (\d+)/ or next;
        push @m, $f if $pgrp == $pgid && $st ne 'Z';
    }
    return @m;
}

{
    fake('hang');
    unlink "$fake/pids";
    my $pw = enroll_password();
    log_watch();
    my $t0 = time;
    my $e = enroll($K[9], password => $pw, path => $FAKE,
                   subject => [[O => $O], [CN => 'exec hang']]);
    my $hung = $e;
    my $took = time - $t0;
    my @log = log_lines(qr/SCEP02004|SCEP00092/);
    reply_is($e, 3, undef, 'a hanging command: the device gets PENDING');
    logged(qr/SCEP00092: transaction \Q$e->{msg}{transid}\E: the CA \(provider exec\) could not take the request/,
           \@log, 'a hanging command: the RA keeps the request in its spool (SCEP00092)');
    cmp_ok($took, '>=', 1.9, 'the RA waited SCEPExecTimeout (2 s)');
    cmp_ok($took, '<', 10, 'and not much longer');
    logged(qr/SCEP02004: .*ran longer than 2000 ms; its process group was killed \(NDES event 31\)/,
           \@log, 'SCEP02004: killed at the timeout, NDES event 31');
    my ($sh, $child) = split ' ', slurp("$fake/pids") // '';
    ok($sh && $child, 'the command had started a child') or diag(slurp("$fake/pids"));
    my @left;
    for (1 .. 50) {
        @left = grep { proc_alive($_) } grep { defined } $sh, $child;
        last unless @left;
        sleep 0.1;
    }
    is_deeply(\@left, [], 'the command and its child are gone');
    is_deeply([group_members($sh // 0)], [], 'nothing is left of its process group');

    # the worker is fine: the next request is answered at once
    fake('env');
    $t0 = time;
    $e = enroll($K[9], password => $pw, path => $FAKE,
                subject => [[O => $O], [CN => 'exec after hang']]);
    reply_is($e, 2, 3, 'after the timeout: the next request is answered (the password kept)');
    cmp_ok(time - $t0, '<', 5, 'at once');

    # the device polls: the RA submits the spooled request again, saying so
    my $p = enroll($K[9], msgtype => 20, transid => $hung->{msg}{transid}, csr => $hung->{csr},
                   content => iasubj_file(subject_from => $hung->{csr}), path => $FAKE);
    reply_is($p, 2, 3, 'the poll after the hang: the command is asked again, its answer relayed');
    my %env = map { /^([^=]+)=(.*)$/ ? ($1 => $2) : () } split /\n/, slurp("$fake/last/env") // '';
    is($env{SCEP_TRANSACTION_ID}, $hung->{msg}{transid}, 'the retry is the hung transaction');
    is($env{SCEP_RETRY}, '1', 'SCEP_RETRY 1: a retry from the RA\'s spool');
}

# fault MODE, LOG_RE, NAME: the command misbehaves: a CA fault.  The
# device gets PENDING (the RA keeps the request in its spool, see
# t/56-spool.t) and the log says why, NDES event 31.
sub fault {
    my ($mode, $re, $name) = @_;
    fake($mode);
    log_watch();
    my $e = enroll($K[10], password => enroll_password(), path => $FAKE,
                   subject => [[O => $O], [CN => "exec $mode"]]);
    my @log = log_lines($re);
    is($e->{http}{code}, 200, "$name: a CertRep");
    is($e->{rep}{pkiStatus}, 3, "$name: PENDING, no certificate") or diag(enroll_diag($e));
    logged($re, \@log, "$name: the log says why (NDES event 31)");
}

copy(pki('enroll-ra-sign.pem'), "$fake/wrong.pem") or die "copy: $!";
fault('garbage', qr/SCEP02008: .*exited with status 0 but stdout holds no PEM certificate/,
      'exit 0 with garbage');
fault('wrongkey', qr/SCEP02009: .*is not for the request's key; it is not sent/,
      'exit 0 with a certificate for another key');
fault('crash', qr/SCEP02005: .*died of signal 11/, 'a crash');
fault('flood', qr/SCEP02006: .*printed 2097152 bytes, over the limit/, 'too much output');
fault('exit 3', qr/SCEP02007: .*exited with status 3 \(NDES event 31\): fake exit 3/, 'exit 3');
fault('exit 1', qr/SCEP02007: .*exited with status 1 /, 'exit 1');
fault('badid', qr/SCEP02008: .*its request id is empty, longer than 256 characters or not printable/,
      'exit 75 with a bad request id');

# --- pending records survive a restart ----------------------------------

# A separate httpd, started twice on one spool: the first takes a request
# the command holds, the second (a new server, nothing in memory) hands
# the command its request id on the CertPoll.
{
    my $dir = tempdir('restart-XXXXXX', DIR => tmpdir());
    make_path("$dir/fake");
    my $so = File::Spec->catfile($top, '.libs', 'mod_scep_ca_exec.so');
    my $conf = <<CONF;
LoadModule scep_ca_exec_module "$so"
LimitRequestLine 65536
SCEPExecSpoolDir "$dir/spool"
<Location /r/>
    SetHandler scep
    SCEPCACertificateFile "@{[ enroll_ca() ]}"
    SCEPRASigningCertificateFile "@{[ ra_sign() ]}"
    SCEPRASigningKeyFile "@{[ pki('enroll-ra-sign.key') ]}"
    SCEPRAEncryptionCertificateFile "@{[ ra_enc() ]}"
    SCEPRAEncryptionKeyFile "@{[ pki('enroll-ra-enc.key') ]}"
    SCEPEnforcePassword Off
    SCEPProvider exec "$top/t/tools/exec-fake" "$dir/fake"
</Location>
CONF
    my $csr = csr($K[12], subject => [[O => $O], [CN => 'exec restart']]);
    my $m = pkimessage($K[12], $csr);
    spew("$dir/fake/mode", 'pending');
    my $r = try_httpd($conf, get_target('/r/pkiclient.exe', $m));
    my $rep = $r->{res} ? read_reply($m, $r->{res}->content) : {};
    is($rep->{pkiStatus}, 3, 'a separate httpd: the command holds the request (PENDING)')
        or diag($r->{out}, $r->{log});
    spew("$dir/fake/mode", 'env');
    my $p = pkimessage($K[12], $csr, msgtype => 20, transid => $m->{transid},
                       content => iasubj_file(subject_from => $csr));
    $r = try_httpd($conf, get_target('/r/pkiclient.exe', $p));
    $rep = $r->{res} ? read_reply($p, $r->{res}->content) : {};
    is($rep->{pkiStatus}, 2, 'after a restart: the CertPoll reaches the command') or diag($r->{log});
    my %env = map { /^([^=]+)=(.*)$/ ? ($1 => $2) : () } split /\n/, slurp("$dir/fake/last/env") // '';
    is($env{SCEP_REQUEST_ID}, 'fake-request-42', 'after a restart: SCEP_REQUEST_ID from the spool');
}

# get_target PATH, MESSAGE: a GET PKIOperation for try_httpd.
sub get_target {
    my ($path, $m) = @_;
    (my $b64 = encode_base64($m->{msg}, '')) =~ s/([^A-Za-z0-9])/sprintf '%%%02X', ord $1/ge;
    return "$path?operation=PKIOperation&message=$b64";
}

# --- the examples are shellcheck-clean ---------------------------------

SKIP: {
    my $sc = which_client('shellcheck');
    skip 'no shellcheck', 1 unless $sc;
    my ($src, $sout) = run($sc, map { "$top/conf/examples/$_" } qw(scep-openssl-ca scep-http-ca));
    is($src, 0, 'shellcheck: conf/examples/scep-openssl-ca and scep-http-ca') or diag($sout);
}

# --- an out-of-tree provider: examples/provider-hello --------------------

{
    my $d = tempdir('hello-XXXXXX', DIR => tmpdir());
    copy(File::Spec->catfile($top, 'examples', 'provider-hello', 'mod_scep_hello.c'), $d)
        or die "copy: $!";
    my $apxs = Apache::Test::vars('apxs') || 'apxs';
    my ($brc, $bout) = run('sh', '-c', "cd '$d' && '$apxs' -I '$top/mod_scep' "
        . "-Wc,-Wall -Wc,-Wextra -Wc,-Werror -Wc,-Wno-unused-parameter "
        . "-Wc,-Wno-missing-field-initializers -c mod_scep_hello.c -lcrypto");
    is($brc, 0, 'examples/provider-hello builds with apxs against mod_scep.h') or diag($bout);
    my $so = "$d/.libs/mod_scep_hello.so";
    my $csr = csr($K[11], subject => [[O => $O], [CN => 'hello device']]);
    my $m = pkimessage($K[11], $csr);
    my $r = try_httpd(<<CONF, get_target('/hello/pkiclient.exe', $m));
LoadModule scep_hello_module "$so"
LimitRequestLine 65536
<Location /hello/>
    SetHandler scep
    SCEPCACertificateFile "@{[ enroll_ca() ]}"
    SCEPRASigningCertificateFile "@{[ ra_sign() ]}"
    SCEPRASigningKeyFile "@{[ pki('enroll-ra-sign.key') ]}"
    SCEPRAEncryptionCertificateFile "@{[ ra_enc() ]}"
    SCEPRAEncryptionKeyFile "@{[ pki('enroll-ra-enc.key') ]}"
    SCEPEnforcePassword Off
    SCEPProvider hello "hello from the test"
</Location>
CONF
    ok($r->{started}, 'an httpd with the hello provider starts') or diag($r->{out}, $r->{log});
    my $rep = $r->{res} ? read_reply($m, $r->{res}->content) : {};
    is($rep->{pkiStatus}, 3, 'the hello provider holds the request: PENDING')
        or diag($r->{res} ? $r->{res}->status_line : 'no answer', $rep->{text} // '', $r->{log});
    like($r->{log}, qr/hello from the test: transaction \Q$m->{transid}\E, subject .*hello device/,
         'the hello provider logged the request');
}

done_testing();
