# Licensed under the Apache License, Version 2.0; see LICENSE.
# Requests held for approval by the embedded CA (SCEPLocalCAApproval
# manual), the approval page (SetHandler scep-requests: list, approve,
# reject, revoke, as HTML and JSON, with a token against cross-site
# requests and its own Require), the retentions (SCEPPendingRetention,
# SCEPIssuedRetention), and the CRL as a file (SetHandler scep-crl).
# A held request answers PENDING to the PKCSReq, to its resending and to
# CertPoll, survives a full stop and start of httpd, and after approval
# the next poll gets the certificate; after a rejection, FAILURE.
# Requests made by the test-only client t/tools/scepreq.c; the scep_enroll
# virtual host of t/conf/extra.conf.in.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use File::Spec;
use POSIX ();
use SCEPTest;
use SCEPAdmin;
use SCEPEnroll qw(:DEFAULT serial_of logged reply_is);

admins_file();

my $O = 'mod_scep TEST ONLY';
my $MANUAL = '/enroll/manual/pkiclient.exe';
my $REQ = '/enroll/requests/';
my @K = new_keys(map { "a55-$_" } 1 .. 12);
ok(scepreq(), 'the test client t/tools/scepreq.c compiles');

# --- helpers ---

# held KEY, CN, PATH, OPTIONS: a PKCSReq with a fresh password.
sub held {
    my ($key, $cn, $path, %o) = @_;
    return enroll($key, password => enroll_password(), path => $path // $MANUAL,
                  subject => [[O => $O], [CN => $cn]], %o);
}

# resend ENROLL, KEY, PATH: the same PKCSReq again (same transaction,
# key and password, now spent).
sub resend {
    my ($e, $key, $path) = @_;
    return enroll($key, csr => $e->{csr}, transid => $e->{msg}{transid}, path => $path // $MANUAL);
}

# poll ENROLL, KEY, PATH: CertPoll for its transaction.
sub poll {
    my ($e, $key, $path) = @_;
    return enroll($key, msgtype => 20, transid => $e->{msg}{transid}, csr => $e->{csr},
                  content => iasubj_file(subject_from => $e->{csr}), path => $path // $MANUAL);
}

# page USER, OPTIONS: GET the approval page as JSON; (response, hash).
sub page {
    my ($user, %o) = @_;
    return admin_json($o{path} // $REQ, $user, base => enroll_base());
}

sub token { my (undef, $j) = page($_[0] // 'alice', @_[1 .. $#_]); return $j ? $j->{csrf_token} : undef }

sub form_body {
    my %f = @_;
    return join '&', map { "$_=" . uri_escape($f{$_}) } sort keys %f;
}
sub uri_escape { (my $s = shift) =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge; return $s }

# post USER, FIELDS, OPTIONS: POST the form (JSON answer unless html =>
# 1); (response, hash).
sub post {
    my ($user, $fields, %o) = @_;
    my $res = admin_request('POST', $o{path} // $REQ, $user, base => enroll_base(),
                            json => !$o{html}, body => form_body(%$fields),
                            content_type => 'application/x-www-form-urlencoded');
    return ($res, decode_json_ok($res));
}

sub listed {
    my ($j, $cn) = @_;
    return grep { $_->{subject} =~ /CN=\Q$cn\E(,|$)/ } @{ $j->{pending} || [] };
}

sub verifies {
    my ($file, $name) = @_;
    my ($rc, $out) = run('openssl', 'verify', '-CAfile', enroll_ca(), $file);
    ok($rc == 0 && $out =~ /: OK/, "$name: the certificate verifies against the CA") or diag($out);
}

# --- a held request, approved ---

my $a1 = held($K[0], 'approval one');
reply_is($a1, 3, undef, 'SCEPLocalCAApproval manual: the PKCSReq gets PENDING');
is(scalar db_query("SELECT id FROM scep_pending WHERE state = 'pending' AND subject LIKE '%approval one%'"), 1,
   'the request is kept in the database (scep_pending)');
is(scalar db_query("SELECT serial FROM scep_issued WHERE subject LIKE '%approval one%'"), 0,
   'nothing is issued yet');
reply_is(resend($a1, $K[0]), 3, undef, 'the same PKCSReq again (password spent): PENDING');
reply_is(poll($a1, $K[0]), 3, undef, 'CertPoll: PENDING');

{
    my $e = poll($a1, $K[1]);
    reply_is($e, 2, 4, 'CertPoll signed by another key: FAILURE badCertId');
}

my ($res, $j) = page('alice');
is($res->code, 200, 'approval page, JSON, as alice: 200');
my ($p1) = listed($j, 'approval one');
ok($p1, 'the held request is listed') or diag($res->content);
is($p1->{template}, 'IPSECIntermediateOffline', 'listed with its template');
is($p1->{requester}, 'alice', 'listed with the administrator who gave its password');
is($p1->{key}, 'RSA 2048', 'listed with its key');
ok($p1->{received} =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'listed with the time it came');
like($j->{csrf_token} // '', qr/^[0-9a-f]{64}$/, 'the page gives a token');

($res) = page('bob');
is($res->code, 403, 'bob may fetch passwords but not approve: 403');
($res) = page(undef);
is($res->code, 401, 'no credentials: 401');
($res) = page('alice', path => '/enroll/requests-plain/');
is($res->code, 403, 'over plain HTTP without SCEPAdminAllowHTTP: 403');

# Changes: POST only, with the token of the user who posts.
{
    my $r = admin_request('GET', "$REQ?action=approve&id=$p1->{id}&token=$j->{csrf_token}", 'alice',
                          base => enroll_base(), json => 1);
    is($r->code, 200, 'a GET with approve parameters just shows the page');
    log_watch();
    my ($r1, $j1) = post('alice', { action => 'approve', id => $p1->{id} });
    is($r1->code, 403, 'approve without a token: 403');
    is($j1 && $j1->{error}, 'bad_token', 'approve without a token: error bad_token');
    my ($r2) = post('alice', { action => 'approve', id => $p1->{id}, token => 'f' x 64 });
    is($r2->code, 403, 'approve with a wrong token: 403');
    my ($r3) = post('bob', { action => 'approve', id => $p1->{id}, token => token('bob', path => '/enroll/requests-bob/') },
                    path => '/enroll/requests-bob/');
    ok($r3->code == 200, "bob's own approval page (/enroll/requests-bob/) accepts bob's token") or diag($r3->content);
    my ($r4) = post('bob', { action => 'approve', id => $p1->{id}, token => $j->{csrf_token} },
                    path => '/enroll/requests-bob/');
    is($r4->code, 403, "alice's token posted by bob: 403 (tokens are bound to the user)");
    logged(qr/SCEP00120: approval page: a POST by alice without a valid token/, [log_lines()],
           'a refused POST logs SCEP00120');
}
# (bob's approval above issued the certificate: the page there is the same
# CA's)
($res, $j) = post('alice', { action => 'approve', id => $p1->{id}, token => token() });
is($res->code, 409, 'approving a decided request again: 409');
is($j && $j->{error}, 'conflict', 'error conflict');

{
    my $e = poll($a1, $K[0]);
    reply_is($e, 0, undef, 'after approval, CertPoll: SUCCESS');
    verifies($e->{cert}, 'approved');
    my ($row) = db_query("SELECT serial, decided_by FROM scep_pending p JOIN scep_issued i USING (serial) "
                         . "WHERE p.subject LIKE '%approval one%'");
    is(serial_key($row && $row->[0]), serial_of($e->{cert}), 'the certificate polled is the one recorded for the request');
    is($row && $row->[1], 'bob', 'the request records who approved it');
    reply_is(resend($a1, $K[0]), 0, undef, 'the PKCSReq again after approval: SUCCESS');
    is(scalar db_query("SELECT serial FROM scep_issued WHERE subject LIKE '%approval one%'"), 1,
       'one certificate for the request, however often asked');
}

# What the CA would refuse is refused at once, not held.
{
    my $e = held($K[1], 'approval ca', $MANUAL, ext => ['basicConstraints = critical, CA:TRUE']);
    reply_is($e, 2, 2, 'a CA:TRUE request where approval is manual: FAILURE badRequest at once');
    my (undef, $l) = page('alice');
    ok(!listed($l, 'approval ca'), 'it is not held');
}

# --- approved as JSON, the answer carries the serial ---

{
    my $e = held($K[2], 'approval json');
    reply_is($e, 3, undef, 'second held request: PENDING');
    my (undef, $l) = page('alice');
    my ($p) = listed($l, 'approval json');
    log_watch();
    my ($r, $a) = post('alice', { action => 'approve', id => $p->{id}, token => $l->{csrf_token} });
    is($r->code, 200, 'approve: 200');
    is($a && $a->{status}, 'issued', 'approve: status issued');
    my $got = poll($e, $K[2]);
    reply_is($got, 0, undef, 'CertPoll after approval: SUCCESS');
    is(serial_key($a && $a->{serial}), serial_of($got->{cert}), 'the serial in the JSON answer is the one the device gets');
    logged(qr/SCEP00122: request \Q$p->{id}\E approved by alice: issued serial/, [log_lines()], 'approval logged (SCEP00122)');
    my (undef, $after) = page('alice');
    ok(!listed($after, 'approval json'), 'an approved request leaves the list');
}

# --- rejected ---

{
    my $e = held($K[3], 'approval reject');
    reply_is($e, 3, undef, 'third held request: PENDING');
    my (undef, $l) = page('alice');
    my ($p) = listed($l, 'approval reject');
    my ($r, $a) = post('alice', { action => 'reject', id => $p->{id}, reason => 'not ours', token => $l->{csrf_token} });
    is($r->code, 200, 'reject: 200');
    is($a && $a->{status}, 'rejected', 'reject: status rejected');
    reply_is(poll($e, $K[3]), 2, 2, 'CertPoll after rejection: FAILURE badRequest');
    reply_is(resend($e, $K[3]), 2, 2, 'the PKCSReq again after rejection: FAILURE badRequest');
    is(scalar db_query("SELECT serial FROM scep_issued WHERE subject LIKE '%approval reject%'"), 0,
       'nothing issued for a rejected request');
    my ($rc, $out, $err) = scepadm('pending');
    is($rc, 0, 'scepadm pending') or diag($err);
    like($out, qr/^\s*\Q$p->{id}\E\s+rejected\s+CN=approval reject,.*\balice\b.*not ours\s*$/m,
         'scepadm pending shows the rejection, who decided and why');
    ($r, $a) = post('alice', { action => 'reject', id => '999999', token => $l->{csrf_token} });
    is($r->code, 404, 'rejecting an unknown request: 404');
    ($r, $a) = post('alice', { action => 'frobnicate', id => $p->{id}, token => $l->{csrf_token} });
    is($r->code, 400, 'an unknown action: 400');
    ($r, $a) = post('alice', { action => 'reject', id => $p->{id}, token => $l->{csrf_token},
                               reason => 'x' x 9000 });
    is($r->code, 400, 'a form over 8 KB: 400');
    is($a && $a->{error}, 'bad_form', 'a form over 8 KB: error bad_form');
    $r = admin_request('DELETE', $REQ, 'alice', base => enroll_base(), json => 1);
    is($r->code, 405, 'approval page: DELETE gets 405');
}

# --- the HTML page: escaped, with forms carrying the token ---

{
    my $e = held($K[4], 'html <b>bold</b> & co');
    reply_is($e, 3, undef, 'a held request with markup in its name: PENDING');
    my $r = admin_request('GET', $REQ, 'alice', base => enroll_base());
    is($r->code, 200, 'HTML page: 200');
    like($r->header('Content-Type') // '', qr{^text/html; charset=utf-8}, 'HTML page: UTF-8 HTML');
    my $html = $r->decoded_content // '';
    like($html, qr/CN=html \\?&lt;b\\?&gt;bold\\?&lt;\/b\\?&gt; &amp; co/, 'the subject is escaped');
    unlike($html, qr/<b>bold<\/b>/, 'no markup from the request gets through');
    my ($tok) = $html =~ /name="token" value="([0-9a-f]{64})"/;
    ok($tok, 'the forms carry the token');
    my ($id) = $html =~ /<tr><td>(\d+)<\/td><td>CN=html /;
    ok($id, 'the request id is in the row');
    like($r->header('Cache-Control') // '', qr/no-store/, 'Cache-Control: no-store');
    my ($p) = post('alice', { action => 'approve', id => $id // 0, token => $tok // '' }, html => 1);
    is($p->code, 200, 'approve from the HTML form: 200');
    like($p->decoded_content // '', qr/Request \d+ approved: certificate [0-9A-F]+ issued/, 'the page says so');
    reply_is(poll($e, $K[4]), 0, undef, 'the device polls and gets its certificate');
}

# --- a real client waits: strongSwan pki --scep polls until approved ---

{
    my $pki = which_client('pki');
    ok($pki, 'strongSwan pki is installed (strongswan-pki)');
    my $out = File::Spec->catfile(tmpdir(), 'a55-pki.pem');
    my $err = File::Spec->catfile(tmpdir(), 'a55-pki.err');
    my $pw = enroll_password();
    my $pid = fork() // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;     # the certificate
        open STDERR, '>', $err;
        { no warnings 'exec';
          exec 'timeout', '90', $pki, '--scep', '-u', enroll_url($MANUAL), '-i', $K[10],
             '-d', "O=$O, CN=approval pki", '-p', $pw, '--cacert-enc', ra_enc(),
             '--cacert-sig', ra_sign(), '--cacert', enroll_ca(), '--outform', 'pem',
             '--interval', '1', '--maxpolltime', '80'; }
        POSIX::_exit(127);
    }
    my $p;
    for (1 .. 60) {
        my (undef, $l) = page('alice');
        last if ($p) = listed($l, 'approval pki');
        select(undef, undef, undef, 0.5);
    }
    ok($p, 'pki --scep: its request is held and listed');
    sleep 2;
    ok(waitpid($pid, POSIX::WNOHANG()) == 0, 'pki --scep keeps polling while the request waits');
    my ($r) = post('alice', { action => 'approve', id => $p ? $p->{id} : 0, token => token() });
    is($r->code, 200, 'approved while pki polls');
    waitpid($pid, 0);
    is($? >> 8, 0, 'pki --scep ends successfully after the approval') or diag(slurp($err));
    like(slurp($err) // '', qr/PENDING/i, 'pki --scep was told PENDING and polled');
    verifies($out, 'pki --scep after approval');
}

# --- a renewal held for approval, polled with the renewed certificate ---

{
    my $dev = held($K[11], 'approval renewal', '/enroll/scep/pkiclient.exe');
    reply_is($dev, 0, undef, 'a certificate to renew');
    my $ren = enroll($K[1], msgtype => 17, subject => [[O => $O], [CN => 'approval renewal']],
                     signer_cert => $dev->{cert}, signer_key => $K[11], path => $MANUAL);
    reply_is($ren, 3, undef, 'a RenewalReq where approval is manual: PENDING');
    my $poll = sub {
        enroll($K[11], msgtype => 20, transid => $ren->{msg}{transid},
               content => iasubj_file(subject_from => $ren->{csr}),
               signer_cert => $dev->{cert}, signer_key => $K[11], path => $MANUAL);
    };
    reply_is($poll->(), 3, undef, 'CertPoll signed by the renewed certificate: PENDING');
    my (undef, $l) = page('alice');
    my ($p) = listed($l, 'approval renewal');
    ok($p && $p->{renewal}, 'listed as a renewal');
    my ($r) = post('alice', { action => 'approve', id => $p ? $p->{id} : 0, token => $l->{csrf_token} });
    is($r->code, 200, 'renewal approved');
    my $got = $poll->();
    reply_is($got, 0, undef, 'CertPoll after approval: SUCCESS');
    my ($sup) = db_query("SELECT COALESCE(superseded_by, '') FROM scep_issued WHERE ltrim(serial, '0') = '"
                         . serial_of($dev->{cert}) . "'");
    is(serial_key($sup && $sup->[0]), serial_of($got->{cert}), 'the renewed certificate is superseded by the approved one');
}

# --- per template: only Signature requests are held ---

{
    my $sig = held($K[5], 'approval sig', '/enroll/manual-sig/pkiclient.exe',
                   ext => ['keyUsage = critical, digitalSignature']);
    reply_is($sig, 3, undef, 'SCEPLocalCAApproval manual Signature: a signature request is held');
    my $gen = held($K[6], 'approval general', '/enroll/manual-sig/pkiclient.exe');
    reply_is($gen, 0, undef, 'SCEPLocalCAApproval manual Signature: another template is issued at once');
    my (undef, $l) = page('alice');
    my ($p) = listed($l, 'approval sig');
    is($p && $p->{template}, 'Signature', 'listed with the template Signature');
    # left pending: the restart below must keep it
    my $sig_id = $p && $p->{id};

    # --- SCEPPendingRetention: a held request expires ---
    my $short = held($K[7], 'approval expires', '/enroll/manual-short/pkiclient.exe');
    reply_is($short, 3, undef, 'SCEPPendingRetention 4s: PENDING');
    sleep 5;
    reply_is(poll($short, $K[7], '/enroll/manual-short/pkiclient.exe'), 2, 4,
             'SCEPPendingRetention 4s: 5 s later CertPoll gets FAILURE badCertId');
    (undef, $l) = page('alice');
    ok(!listed($l, 'approval expires'), 'an expired request is not listed');

    # --- a full stop and start of httpd keeps what is held ---
    my $server = Apache::Test::config()->server;
    $server->stop;
    ok($server->start, 'httpd stopped and started again');
    reply_is(poll($sig, $K[5], '/enroll/manual-sig/pkiclient.exe'), 3, undef,
             'after a full restart, the held request is still PENDING');
    (undef, $l) = page('alice');
    ($p) = listed($l, 'approval sig');
    is($p && $p->{id}, $sig_id, 'after a full restart, it is still listed');
    my ($r, $a) = post('alice', { action => 'approve', id => $sig_id // 0, token => $l->{csrf_token} });
    is($r->code, 200, 'approved after the restart');
    my $got = poll($sig, $K[5], '/enroll/manual-sig/pkiclient.exe');
    reply_is($got, 0, undef, 'the device polls after the restart and gets its certificate');
    verifies($got->{cert}, 'approved after a restart');
    like(cert_info($got->{cert})->{ku} // '', qr/Digital Signature/, 'with the Signature template');
}

# --- SCEPIssuedRetention: answered again only so long ---

{
    my $e = held($K[8], 'retention short', '/enroll/short/pkiclient.exe');
    reply_is($e, 0, undef, 'SCEPIssuedRetention 4s: SUCCESS');
    my $serial = serial_of($e->{cert});
    my $again = resend($e, $K[8], '/enroll/short/pkiclient.exe');
    reply_is($again, 0, undef, 'resent at once: SUCCESS');
    is(serial_of($again->{cert}), $serial, 'resent at once: the same certificate');
    sleep 5;
    reply_is(resend($e, $K[8], '/enroll/short/pkiclient.exe'), 2, 2,
             'resent 5 s later: the password is spent and the answer no longer kept: FAILURE badRequest');
    reply_is(poll($e, $K[8], '/enroll/short/pkiclient.exe'), 2, 4, 'CertPoll 5 s later: FAILURE badCertId');
    my $g = enroll($K[8], msgtype => 21, content => ias_file(serial_from => $e->{cert}),
                   signer_cert => $e->{cert}, signer_key => $K[8], path => '/enroll/short/pkiclient.exe');
    reply_is($g, 0, undef, 'GetCert still returns it');
    is(serial_of($g->{cert}), $serial, 'GetCert: that certificate');
    # a new password for the same transaction and key: a new certificate
    my $new = enroll($K[8], csr => csr($K[8], password => enroll_password(),
                                         subject => [[O => $O], [CN => 'retention short']]),
                     transid => $e->{msg}{transid}, path => '/enroll/short/pkiclient.exe');
    reply_is($new, 0, undef, 'the same transaction and key with a new password after the retention: SUCCESS');
    isnt(serial_of($new->{cert}), $serial, 'a new certificate');
}

# --- revocation from the approval page, the CRL file ---

sub crl_file {
    my $r = Apache::TestRequest::GET(enroll_url('/enroll/crl/ca.crl'));
    my $f = File::Spec->catfile(tmpdir(), 'a55-' . int(rand 1e9) . '.crl');
    spew($f, $r->content);
    return ($r, $f);
}

{
    my $e = held($K[9], 'revoke me', '/enroll/cdp/pkiclient.exe');
    reply_is($e, 0, undef, 'a certificate to revoke');
    my $serial = serial_of($e->{cert});
    my (undef, $text) = run('openssl', 'x509', '-in', $e->{cert}, '-noout', '-text');
    like($text, qr/X509v3 CRL Distribution Points:\s*\n\s*Full Name:\s*\n\s*URI:http:\/\/pki\.test\.invalid\/enroll\/crl\/ca\.crl/,
         'SCEPLocalCACRLURL: the certificate names the CRL file as its distribution point');
    my ($c0, $f0) = crl_file();
    my $pem0 = "$f0.pem";
    run('openssl', 'crl', '-inform', 'DER', '-in', $f0, '-out', $pem0);
    my ($vrc, $vout) = run('openssl', 'verify', '-crl_check', '-CAfile', enroll_ca(), '-CRLfile', $pem0, $e->{cert});
    ok($vrc == 0 && $vout =~ /: OK/, 'openssl verify -crl_check with that CRL: OK before revocation') or diag($vout);
    is($c0->code, 200, 'the CRL file: 200');
    is($c0->header('Content-Type'), 'application/pkix-crl', 'the CRL file: application/pkix-crl');
    my ($rc, $out) = run('openssl', 'crl', '-inform', 'DER', '-in', $f0, '-noout', '-verify', '-CAfile', enroll_ca());
    ok($rc == 0 && $out =~ /verify OK/, 'the CRL file verifies against the CA') or diag($out);
    my ($c0b) = crl_file();
    is($c0b->content, $c0->content, 'nothing revoked since: the same CRL (not signed again)');
    my $post = Apache::TestRequest::POST(enroll_url('/enroll/crl/ca.crl'), content => 'x');
    is($post->code, 405, 'the CRL file: POST gets 405');

    my $tok = token();
    my ($r, $a) = post('alice', { action => 'revoke', serial => $serial, reason => 'keyCompromise', token => $tok });
    is($r->code, 200, 'revoke from the approval page: 200') or diag($r->content);
    is($a && $a->{status}, 'revoked', 'revoke: status revoked');
    ($r) = post('alice', { action => 'revoke', serial => $serial, token => $tok });
    is($r->code, 409, 'revoking again: 409');
    ($r) = post('alice', { action => 'revoke', serial => 'ABCDEF0123', token => $tok });
    is($r->code, 404, 'revoking an unknown serial: 404');
    ($r) = post('alice', { action => 'revoke', serial => $serial, reason => 'bored', token => $tok });
    is($r->code, 400, 'an unknown reason: 400');
    ($r) = post('alice', { action => 'revoke', serial => $serial, reason => 'keyCompromise' });
    is($r->code, 403, 'revoke without a token: 403');

    my ($c1, $f1) = crl_file();
    my $pem1 = "$f1.pem";
    run('openssl', 'crl', '-inform', 'DER', '-in', $f1, '-out', $pem1);
    ($vrc, $vout) = run('openssl', 'verify', '-crl_check', '-CAfile', enroll_ca(), '-CRLfile', $pem1, $e->{cert});
    ok($vrc != 0 && $vout =~ /certificate revoked/, 'openssl verify -crl_check with the new CRL: certificate revoked') or diag($vout);
    ($rc, $out) = run('openssl', 'crl', '-inform', 'DER', '-in', $f1, '-noout', '-text', '-verify', '-CAfile', enroll_ca());
    ok($rc == 0 && $out =~ /verify OK/, 'the new CRL verifies') or diag($out);
    like($out, qr/Serial Number: 0?\Q$serial\E\s+Revocation Date:.*\n\s+CRL entry extensions:\s+X509v3 CRL Reason Code:\s+Key Compromise/i,
         'the new CRL lists the serial as Key Compromise');
    my ($n1) = $out =~ /X509v3 CRL Number:\s*\n\s*(\d+)/;
    my (undef, $out0) = run('openssl', 'crl', '-inform', 'DER', '-in', $f0, '-noout', '-text');
    my ($n0) = $out0 =~ /X509v3 CRL Number:\s*\n\s*(\d+)/;
    ok(defined $n0 && defined $n1 && $n1 > $n0, 'the CRL has a CRL number, larger than the last one\'s')
        or diag("before: ", $n0 // 'none', ", after: ", $n1 // 'none');
    like($out, qr/X509v3 Authority Key Identifier:/, 'the CRL has an authority key identifier');
    reply_is(enroll($K[9], msgtype => 21, content => ias_file(serial_from => $e->{cert}),
                    signer_cert => $e->{cert}, signer_key => $K[9]), 0, undef,
             'GetCert of a revoked certificate still answers');
}

done_testing();
