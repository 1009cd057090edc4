# Licensed under the Apache License, Version 2.0; see LICENSE.
# Enrollment (PKIOperation PKCSReq) through the embedded CA, with
# requests made byte for byte by the test-only client t/tools/scepreq.c:
# the CertRep and the certificate, the audit line and the database row,
# one-time password accounting on real requests (NDES events 28, 29,
# 43), a resent request, GET and POST encodings, algorithms, templates,
# requests the CA refuses, concurrent issuance.  The scep_enroll virtual
# host of t/conf/extra.conf.in.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256_hex);
use POSIX ();
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SCEPTest;
use SCEPAdmin;
use SCEPEnroll;

admins_file();

my $O = 'mod_scep TEST ONLY';
my $state = Apache::Test::vars('t_state');

ok(-d $state && -w $state, 'the state directory exists and the test user can write it')
    or diag("$state: " . (-d $state ? 'not writable' : 'missing'));
ok(-s "$state/enroll.db", 'httpd created the embedded CA database at startup');

# A password valid 5 seconds, taken first so that its time runs while
# the other tests do.
my $pw_short = enroll_password('/enroll/admin-5s/');
my $pw_short_at = time;

my @K = new_keys(map { "e50-$_" } 1 .. 18);
ok(scepreq(), 'the test client t/tools/scepreq.c compiles');

# status_is ENROLL, STATUS, FAILINFO, NAME: the CertRep's pkiStatus (0
# SUCCESS, 2 FAILURE, 3 PENDING) and failInfo, as application/x-pki-message
# signed by the RA.
sub status_is {
    my ($e, $status, $fail, $name) = @_;
    my $r = $e->{rep};
    subtest $name => sub {
        is($e->{http}{code}, 200, 'HTTP 200');
        is($e->{http}{ctype}, 'application/x-pki-message',
           'Content-Type application/x-pki-message');
        is($r->{verified}, 1, 'the CertRep signature verifies');
        is($r->{signer_is_ra}, 1, 'signed by the RA signing certificate');
        is($r->{messageType}, 3, 'messageType CertRep (3)');
        is($r->{transactionID}, $e->{msg}{transid}, 'transactionID copied');
        is($r->{recipientNonce_ok}, 1, 'recipientNonce = our senderNonce');
        is($r->{pkiStatus}, $status, "pkiStatus $status");
        is($r->{failInfo}, $fail // '-', 'failInfo ' . ($fail // 'absent'));
    } or diag(enroll_diag($e), "\n", $r->{text} // '');
}

sub serial_of { my $f = shift; my $i = $f ? cert_info($f) : undef; return $i ? $i->{serial} : '' }

# rows_for TRANSID: the database rows of a transaction (serial, subject,
# template, requester, client).
sub rows_for {
    my $tid = shift;
    my $h = uc sha256_hex($tid);
    return db_query("SELECT serial, subject, template, requester, client "
                    . "FROM scep_issued WHERE upper(transid) = '$h'");
}

sub norm_serial { (my $s = uc(shift // '')) =~ s/^0+(?=.)//; return $s }

# --- one enrollment, looked at closely ---

{
    my $pw = enroll_password();
    log_watch();
    my $e = enroll($K[0], password => $pw,
                   subject => [[O => $O], [OU => 'Enrollment'], [CN => 'enroll basic']],
                   ext => ['keyUsage = critical, digitalSignature, keyEncipherment']);
    my @log = log_lines(qr/SCEP00076/);
    status_is($e, 0, undef, 'PKCSReq with a fresh password: SUCCESS');
    my $r = $e->{rep};
    is($r->{senderNonce_len}, 16, 'CertRep senderNonce: 16 bytes');
    is($r->{senderNonce_differs}, 1, 'CertRep senderNonce: a fresh one');
    is($r->{contentType_attr}, 1, 'CertRep signed attribute contentType');
    is($r->{digest}, 'SHA256', 'CertRep digest: the request\'s (SHA-256)');
    is($r->{sigalg}, 'rsaEncryption', 'CertRep signature algorithm rsaEncryption (strongSwan)');
    is($r->{cipher}, 'AES-128-CBC', 'CertRep envelope: the request\'s cipher (AES-128)');
    is($r->{certs}, 2, 'the envelope holds the certificate and the CA');
    my $info = cert_ok($e->{cert}, 'the issued certificate', key => $K[0], csr => $e->{csr},
                       subject => "CN=enroll basic,OU=Enrollment,O=$O");
    is_deeply([pem_certs($e->{chain}[1] // '')], [pem_certs(slurp(enroll_ca()))],
              'the second certificate is the CA');

    # the audit line
    my $tid = $e->{msg}{transid};
    my $serial = $info ? $info->{serial} : 'none';
    my ($audit) = grep { /SCEP00076/ && /\Q$tid\E/ } @log;
    ok($audit, 'audit line SCEP00076 for the transaction') or diag(@log);
    $audit //= '';
    like($audit, qr/\[scep:notice\]/, 'audit line at notice level');
    like($audit, qr/issued: transaction \Q$tid\E, /, 'audit: transaction id');
    like($audit, qr/, subject \Q$info->{subject}\E, /, 'audit: subject') if $info;
    like($audit, qr/, serial 0*\Q$serial\E, /i, 'audit: serial of the certificate');
    like($audit, qr/, template IPSECIntermediateOffline, /, 'audit: template');
    like($audit, qr/, provider local, /, 'audit: provider');
    like($audit, qr/, password from alice, /, 'audit: the administrator who issued the password');
    like($audit, qr/, client 127\.0\.0\.1\b/, 'audit: the client address');

    # the database row
    my @rows = rows_for($tid);
    is(scalar @rows, 1, 'the database holds one row for the transaction');
    my ($row) = @rows;
    $row //= [];
    is(norm_serial($row->[0]), norm_serial($serial), 'database: serial');
    is($row->[1], $info ? $info->{subject} : '', 'database: subject');
    is($row->[2], 'IPSECIntermediateOffline', 'database: template');
    is($row->[3], 'alice', 'database: requester');
    is($row->[4], '127.0.0.1', 'database: client');
    my ($krc, $spki) = run('openssl', 'pkey', '-in', $K[0], '-pubout', '-outform', 'DER');
    my $sn = $row->[0] // 'none';
    my ($keyrow) = db_query("SELECT upper(keyid) FROM scep_issued WHERE serial = '$sn'");
    is($keyrow && $keyrow->[0], uc sha256_hex($spki), 'database: keyid is the SHA-256 of the key');
    my ($certrow) = db_query("SELECT replace(replace(cert, char(10), ''), char(13), '') "
                             . "FROM scep_issued WHERE serial = '$sn'");
    is_deeply([pem_certs($certrow ? $certrow->[0] : '')], [pem_certs(slurp($e->{cert} // '/nonexistent') // 'x')],
              'database: the certificate sent');
}

# --- password accounting on real requests ---

# One password: one signature request (0x80) and one encryption request
# (0x20); a second signature request is refused (NDES event 43).
{
    my $pw = enroll_password();
    my $e = enroll($K[1], password => $pw, ext => ['keyUsage = digitalSignature']);
    status_is($e, 0, undef, 'password A, KeyUsage digitalSignature (0x80): SUCCESS');
    $e = enroll($K[2], password => $pw, ext => ['keyUsage = keyEncipherment']);
    status_is($e, 0, undef, 'password A, KeyUsage keyEncipherment (0x20): SUCCESS');
    log_watch();
    $e = enroll($K[3], password => $pw, ext => ['keyUsage = digitalSignature']);
    my @log = log_lines(qr/NDES event 43/);
    status_is($e, 2, 2, 'password A, digitalSignature again (new key): FAILURE badRequest');
    ok((grep { /SCEP00073/ && /NDES event 43\b/ && /\Q$e->{msg}{transid}\E/ } @log),
       'logged: NDES event 43') or diag(@log);
    is(scalar rows_for($e->{msg}{transid}), 0, 'no certificate recorded for it');
}

# A general request (0xa0, or no KeyUsage): once only.
for my $case (['keyUsage digitalSignature, keyEncipherment (0xa0)',
               ['keyUsage = digitalSignature, keyEncipherment']],
              ['no KeyUsage', []]) {
    my ($what, $ext) = @$case;
    my $pw = enroll_password();
    log_watch();
    my $e = enroll($K[4], password => $pw, ext => $ext);
    my @log = log_lines(@$ext ? qr/SCEP00076/ : qr/NDES event 39/);
    status_is($e, 0, undef, "password B, $what: SUCCESS");
    if (!@$ext) {
        ok((grep { /SCEP00071/ && /NDES event 39\b/ } @log),
           'no KeyUsage: NDES event 39 logged') or diag(@log);
    }
    for my $again (['the same kind', $ext], ['signature', ['keyUsage = digitalSignature']],
                   ['encryption', ['keyUsage = keyEncipherment']]) {
        log_watch();
        $e = enroll($K[5], password => $pw, ext => $again->[1]);
        @log = log_lines(qr/SCEP00073/);
        status_is($e, 2, 2, "password B ($what) again, $again->[0]: FAILURE badRequest");
        ok((grep { /SCEP00073/ && /NDES event (29|43)\b/ } @log),
           "password B ($what) again, $again->[0]: NDES event 29 or 43 logged") or diag(@log);
    }
}

# After a signature request, a general request (0xa0) needs the
# signature use too: refused; the encryption use is still there.
{
    my $pw = enroll_password();
    my $e = enroll($K[5], password => $pw, ext => ['keyUsage = digitalSignature']);
    status_is($e, 0, undef, 'password C, digitalSignature: SUCCESS');
    $e = enroll($K[5], password => $pw, ext => ['keyUsage = digitalSignature, keyEncipherment']);
    status_is($e, 2, 2, 'password C, then a general request (0xa0): FAILURE badRequest');
    $e = enroll($K[5], password => $pw, ext => ['keyUsage = keyEncipherment']);
    status_is($e, 0, undef, 'password C, then keyEncipherment: SUCCESS');
}

# A wrong password: FAILURE, NDES event 29; the right one is still good.
{
    my $pw = enroll_password();
    (my $wrong = $pw) =~ tr/0-9A-F/1-9A-F0/;
    log_watch();
    my $e = enroll($K[6], password => $wrong);
    my @log = log_lines(qr/NDES event 29/);
    status_is($e, 2, 2, 'a wrong password: FAILURE badRequest');
    ok((grep { /SCEP00073/ && /NDES event 29\b/ } @log), 'a wrong password: NDES event 29 logged')
        or diag(@log);
    $e = enroll($K[6], password => $pw);
    status_is($e, 0, undef, 'the right password after them: SUCCESS');
}

# No password at all: FAILURE, NDES event 28.
{
    log_watch();
    my $e = enroll($K[6]);
    my @log = log_lines(qr/NDES event 28/);
    status_is($e, 2, 2, 'no challenge password: FAILURE badRequest');
    ok((grep { /SCEP00072/ && /NDES event 28\b/ && /\Q$e->{msg}{transid}\E/ } @log),
       'no challenge password: NDES event 28 logged') or diag(@log);
}

# A request without senderNonce: FAILURE badRequest; the password is
# not spent.
{
    my $pw = enroll_password();
    my $m = pkimessage($K[6], csr($K[6], password => $pw), no_nonce => 1);
    my $h = send_message($m->{msg});
    is($h->{ctype}, 'application/x-pki-message', 'no senderNonce: a CertRep');
    my $r = read_reply($m, $h->{body});
    is($r->{pkiStatus}, 2, 'no senderNonce: FAILURE');
    is($r->{failInfo}, 2, 'no senderNonce: badRequest');
    my $e = enroll($K[6], password => $pw);
    status_is($e, 0, undef, 'no senderNonce: the password was not spent');
}

# A password from another CA's admin page (/pw/admin/, ca.pem): refused.
{
    my ($res, $j) = admin_json('/pw/admin/', 'alice');
    my $e = enroll($K[6], password => ($j && $j->{password}) // 'none');
    status_is($e, 2, 2, 'a password of another CA: FAILURE badRequest');
}

# --- requests the CA refuses: FAILURE badRequest, SCEP00078, the
# password stays usable ---

for my $case (['basicConstraints CA:TRUE', ext => ['basicConstraints = critical, CA:TRUE']],
              ['a SID URI in subjectAltName',
               ext => ['subjectAltName = @alt'],
               sections => "[alt]\nURI.1 = tag:microsoft.com,2022-09-14:sid:S-1-5-21-1\n"],
              ['a SID otherName in subjectAltName',
               ext => ['subjectAltName = otherName:1.3.6.1.4.1.311.25.2.1;OCTETSTRING:S-1-5-21-1']],
              # KB5014754: GeneralNames holding the SID otherName
              ['the Microsoft SID extension',
               ext => ['1.3.6.1.4.1.311.25.2 = ASN1:SEQUENCE:sidext'],
               sections => "[sidext]\nsid = IMPLICIT:0C,SEQUENCE:sidother\n"
                         . "[sidother]\ntype = OID:1.3.6.1.4.1.311.25.2.1\n"
                         . "value = EXPLICIT:0C,OCTETSTRING:S-1-5-21-1\n"],
              ['an unknown critical extension',
               ext => ['1.2.3.4.5.6.7 = critical, ASN1:UTF8String:must understand']]) {
    my ($what, %o) = @$case;
    my $pw = enroll_password();
    log_watch();
    my $e = enroll($K[7], password => $pw, %o);
    my @log = log_lines(qr/SCEP00078/);
    status_is($e, 2, 2, "$what: FAILURE badRequest");
    ok((grep { /SCEP00078/ && /\Q$e->{msg}{transid}\E/ && /NDES event 42\b/ } @log),
       "$what: SCEP00078 logged (NDES event 42)") or diag(@log);
    is(scalar rows_for($e->{msg}{transid}), 0, "$what: nothing recorded");
    $e = enroll($K[7], password => $pw);
    status_is($e, 0, undef, "$what: the password is not spent (a good request then succeeds)");
}

# --- a resent request: the same certificate, one row ---

{
    my $pw = enroll_password();
    my $tid = transid('resend');
    my $csr = csr($K[8], password => $pw);
    my $e1 = enroll($K[8], csr => $csr, transid => $tid);
    status_is($e1, 0, undef, 'first request: SUCCESS');
    my $serial = serial_of($e1->{cert});
    log_watch();
    my $e2 = enroll($K[8], csr => $csr, transid => $tid);
    my @log = log_lines(qr/SCEP00086/);
    status_is($e2, 0, undef, 'the same request again (same transaction ID, key, CSR; new nonce): SUCCESS');
    is(serial_of($e2->{cert}), $serial, 'resent: the same certificate (serial)');
    is(slurp($e2->{cert} // '/nonexistent'), slurp($e1->{cert} // '/nonexistent'),
       'resent: the same certificate (bytes)');
    ok((grep { /SCEP00086/ && /\Q$tid\E/ } @log), 'resent: SCEP00086 logged') or diag(@log);
    # the very same bytes a third time
    my $h = send_message($e1->{msg}{msg});
    my $r = read_reply($e1->{msg}, $h->{body});
    is($r->{pkiStatus}, 0, 'the identical message again: SUCCESS');
    my @rows = rows_for($tid);
    is(scalar @rows, 1, 'the database holds one row for the transaction');
    is(norm_serial($rows[0] && $rows[0][0]), norm_serial($serial), 'with that serial');
    # the same transaction ID with another key is not a resend
    my $e3 = enroll($K[9], password => $pw, transid => $tid);
    status_is($e3, 2, 2, 'the same transaction ID with another key (password spent): FAILURE');
    is(scalar rows_for($tid), 1, 'still one row for the transaction');
}

# --- transports: GET encodings, POST with any Content-Type, HTTP/1.0 ---

for my $t (['get-strongswan', 'GET, base64 with %0A line breaks, + as %2B (strongSwan)'],
           ['get-raw', 'GET, raw + / and ='],
           ['get-url', 'GET, base64url without padding'],
           ['get-escaped', 'GET, every non-alphanumeric character escaped'],
           ['get-sscep', 'GET, %2B %2D %3D %0A (sscep)'],
           ['get-http10', 'GET over HTTP/1.0'],
           ['post', 'POST, Content-Type application/octet-stream'],
           ['post-pki', 'POST, Content-Type application/x-pki-message'],
           ['post-noct', 'POST without Content-Type'],
           ['post-http10', 'POST over HTTP/1.0 without Content-Type'],
           ['post-ber', 'POST, BER: indefinite lengths, eContent in 1000-byte pieces (Intune)'],
           ['get-raw-ber', 'GET, BER'],
           # as long as an RSA 4096 request, or longer (LimitRequestLine)
           ['get-strongswan', 'GET, 90 DNS names: over 8190 bytes', 'long',
            ext => ['subjectAltName = @alt'],
            sections => "[alt]\n" . join('', map { "DNS.$_ = host-$_.a-long-name-for-a-long-request.enroll.example\n" } 1 .. 90)]) {
    my ($transport, $what, $long, %more) = @$t;
    my $pw = enroll_password();
    my $e = enroll($K[10], password => $pw, transport => $transport, %more);
    status_is($e, 0, undef, "$what: SUCCESS");
    if ($long) {
        cmp_ok($e->{http}{target_length}, '>', 8190,
               "$what: the request line is longer than httpd's default limit");
        my ($rc, $out) = run('openssl', 'x509', '-in', $e->{cert} // '/nonexistent',
                             '-noout', '-ext', 'subjectAltName');
        is(scalar(() = $out =~ /DNS:/g), 90, "$what: the 90 DNS names in the certificate");
    }
    ok($e->{cert} && -s $e->{cert}, "$what: a certificate");
    like($e->{http}{status_line}, $transport =~ /http10/ ? qr{^HTTP/1\.[01] 200} : qr{^HTTP/1\.1 200},
         "$what: status line");
}

# Messages that are no pkiMessage: 400, no CertRep.
for my $case (['GET, message not base64', 'GET', '?operation=PKIOperation&message=%25%25%25%25'],
              ['GET, base64 of garbage', 'GET', '?operation=PKIOperation&message='
                                               . 'bm90IGEgcGtpTWVzc2FnZSBhdCBhbGw%3D'],
              ['GET, no message', 'GET', '?operation=PKIOperation'],
              ['POST, garbage', 'POST', '?operation=PKIOperation', "\x30\x82\x01\x00garbage" x 10],
              ['POST, empty body', 'POST', '?operation=PKIOperation', '']) {
    my ($what, $method, $q, $body) = @$case;
    my $h = SCEPEnroll::_http($method, "$ENROLL_SCEP$q", $body,
                              defined $body ? ['Content-Type: application/octet-stream'] : []);
    is($h->{code}, 400, "$what: 400");
    isnt($h->{ctype}, 'application/x-pki-message', "$what: no CertRep");
}

# A signed message with a bad signature cannot be trusted: FAILURE
# badMessageCheck, as a CertRep.
{
    my $pw = enroll_password();
    my $m = pkimessage($K[11], csr($K[11], password => $pw));
    my $der = $m->{msg};
    # flip a bit in the last bytes: the SignerInfo's signature value
    substr($der, -5, 1) = chr(ord(substr($der, -5, 1)) ^ 0x01);
    my $h = send_message($der);
    is($h->{ctype}, 'application/x-pki-message', 'bad signature: a CertRep');
    my $r = read_reply($m, $h->{body});
    is($r->{pkiStatus}, 2, 'bad signature: FAILURE');
    is($r->{failInfo}, 1, 'bad signature: failInfo badMessageCheck (1)');
    my $e = enroll($K[11], password => $pw);
    status_is($e, 0, undef, 'bad signature: the password was not spent');
}

# --- algorithms ---

{
    my @cases = (
        ['AES-256 and SHA-512', '/enroll/scep/', 'aes256', 'sha512', 0, 'AES-256-CBC', 'SHA512'],
        ['AES-192 and SHA-384', '/enroll/scep/', 'aes192', 'sha384', 0, 'AES-192-CBC', 'SHA384'],
        ['DES3 and SHA-1', '/enroll/scep/', 'des3', 'sha1', 0, 'DES-EDE3-CBC', 'SHA1'],
        ['single DES where SCEPAllowDES is Off', '/enroll/scep/', 'des', 'sha256', 2, undef, undef, 0],
        ['single DES with SCEPAllowDES On', '/enroll/des/', 'des', 'sha1', 0, 'DES-CBC', 'SHA1'],
        ['DES3 where SCEPLegacyAlgorithms is Off', '/enroll/modern/', 'des3', 'sha256', 2, undef, undef, 0],
        ['AES and SHA-256 where SCEPLegacyAlgorithms is Off', '/enroll/modern/', 'aes128', 'sha256', 0,
         'AES-128-CBC', 'SHA256'],
    );
    for my $c (@cases) {
        my ($what, $path, $cipher, $digest, $status, $rcipher, $rdigest, $fail) = @$c;
        my $pw = enroll_password();
        my $e = enroll($K[12], password => $pw, cipher => $cipher, digest => $digest,
                       path => "${path}pkiclient.exe");
        status_is($e, $status, $fail, "$what: " . ($status ? 'FAILURE badAlg' : 'SUCCESS'));
        if ($status == 0) {
            is($e->{rep}{cipher}, $rcipher, "$what: the reply is encrypted with $rcipher");
            is($e->{rep}{digest}, $rdigest, "$what: the reply is signed with $rdigest");
        }
        else {
            $e = enroll($K[12], password => $pw);
            status_is($e, 0, undef, "$what: the password was not spent");
        }
    }
}

# A digest the service refuses: FAILURE badAlg, addressed to the request
# (transactionID, recipientNonce) and signed with a digest it accepts.
for my $c (['SHA-1 where SCEPLegacyAlgorithms is Off', '/enroll/modern/', 'sha1'],
           ['MD5', '/enroll/scep/', 'md5']) {
    my ($what, $path, $digest) = @$c;
    my $pw = enroll_password();
    log_watch();
    my $e = enroll($K[12], password => $pw, digest => $digest, path => "${path}pkiclient.exe");
    my @log = log_lines(qr/SCEP00082/);
    my $r = $e->{rep};
    subtest "$what: FAILURE badAlg" => sub {
        is($e->{http}{ctype}, 'application/x-pki-message', 'a CertRep');
        is($r->{verified}, 1, 'signed by the RA');
        is($r->{pkiStatus}, 2, 'FAILURE');
        is($r->{failInfo}, 0, 'failInfo badAlg (0)');
    } or diag(enroll_diag($e), "\n", $r->{text} // '');
    ok((grep { /SCEP00082/ && /digest algorithm not allowed/ } @log),
       "$what: SCEP00082 logged") or diag(@log);
    {
        is($r->{transactionID}, $e->{msg}{transid}, "$what: the CertRep copies the transactionID");
        is($r->{recipientNonce_ok}, 1, "$what: the CertRep's recipientNonce is our senderNonce");
        unlike($r->{digest} // '', qr/^(SHA1|MD5)$/i,
               "$what: the CertRep is not signed with the refused digest");
    }
    $e = enroll($K[12], password => $pw);
    status_is($e, 0, undef, "$what: the password was not spent");
}

# --- templates by KeyUsage ---

for my $case (['digitalSignature (0x80)', ['keyUsage = digitalSignature'], 'Signature',
               'Digital Signature', ['clientAuth']],
              ['keyEncipherment (0x20)', ['keyUsage = keyEncipherment'], 'Encryption',
               'Key Encipherment', ['emailProtection']],
              ['no KeyUsage', [], 'Machine',
               'Digital Signature, Key Encipherment', ['clientAuth', 'serverAuth']]) {
    my ($what, $ext, $template, $ku, $eku) = @$case;
    my $pw = enroll_password();
    my $e = enroll($K[13], password => $pw, ext => $ext, path => '/enroll/templates/pkiclient.exe');
    status_is($e, 0, undef, "templates: $what: SUCCESS");
    cert_ok($e->{cert}, "templates: $what: template $template", key => $K[13], csr => $e->{csr},
            ku => $ku, eku => $eku);
    my ($row) = rows_for($e->{msg}{transid});
    is($row && $row->[2], $template, "templates: $what: the database says $template");
}

# A request's KeyUsage never grants more than the template: a request
# asking for keyCertSign gets the template's KeyUsage.
{
    my $pw = enroll_password();
    my $e = enroll($K[13], password => $pw,
                   ext => ['keyUsage = digitalSignature, keyEncipherment, keyCertSign, cRLSign']);
    status_is($e, 0, undef, 'a request asking for keyCertSign: SUCCESS');
    cert_ok($e->{cert}, 'a request asking for keyCertSign: the template\'s KeyUsage only',
            key => $K[13], csr => $e->{csr});
}

# --- concurrent requests ---

# parallel_send MESSAGES: send every pkiMessage at once, each from its own
# process and connection (GET and POST alternately); the CertReps read.
sub parallel_send {
    my @m = @_;
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    my @pids;
    for my $i (0 .. $#m) {
        my $pid = fork() // die "fork: $!";
        if (!$pid) {
            close $go_w;
            sysread($go_r, my $buf, 1);
            my $h = eval { send_message($m[$i]{msg}, transport => $i % 2 ? 'post' : 'get-raw') };
            spew("$m[$i]{state}.reply", $h ? $h->{body} : '');
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $go_r;
    select(undef, undef, undef, 0.2);
    close $go_w;
    waitpid($_, 0) for @pids;
    return map { read_reply($_, slurp("$_->{state}.reply")) } @m;
}

# Many devices at once, each with its own password: one certificate
# each, unique serials, one row each.
{
    my $n = 8;
    my @m = map {
        my $pw = enroll_password();
        pkimessage($K[14], csr($K[14], password => $pw));
    } 1 .. $n;
    my @r = parallel_send(@m);
    my (%serials, $ok);
    for my $r (@r) {
        $ok++ if ($r->{pkiStatus} // '') eq '0';
        my $s = $r->{certs_file} ? serial_of($r->{certs_file}) : undef;
        $serials{$s}++ if $s;
    }
    is($ok, $n, "$n concurrent enrollments: all SUCCESS");
    is(scalar keys %serials, $n, "$n concurrent enrollments: $n different serials");
    my $rows = 0;
    $rows += scalar rows_for($_->{transid}) for @m;
    is($rows, $n, "$n concurrent enrollments: $n database rows");
}

# One password, several devices at once: exactly one certificate.
{
    my $n = 6;
    my $pw = enroll_password();
    my @m = map { pkimessage($K[15], csr($K[15], password => $pw)) } 1 .. $n;
    my @r = parallel_send(@m);
    my %st;
    $st{ $_->{pkiStatus} // 'none' }++ for @r;
    is_deeply(\%st, { 0 => 1, 2 => $n - 1 },
              "one password, $n requests at once: one SUCCESS, the others FAILURE")
        or diag(explain(\%st));
    my $rows = 0;
    $rows += scalar rows_for($_->{transid}) for @m;
    is($rows, 1, "one password, $n requests at once: one database row");
}

# The same renewal (no password: nothing serializes it before the CA) at
# once from several connections: one certificate, which all of them get.
{
    my $n = 6;
    my $dev = enroll($K[16], password => enroll_password(), subject => [[O => $O], [CN => 'twins']]);
    is($dev->{status}, 0, 'a certificate to renew') or diag(enroll_diag($dev));
    my $csr = csr($K[17], subject => [[O => $O], [CN => 'twins']]);
    my $tid = transid('twins');
    my @m = map { pkimessage($K[17], $csr, transid => $tid, msgtype => 17,
                             signer_cert => $dev->{cert}, signer_key => $K[16]) } 1 .. $n;
    my @r = parallel_send(@m);
    my %serials;
    for my $r (@r) {
        next unless ($r->{pkiStatus} // '') eq '0' && $r->{certs_file};
        my ($leaf) = (slurp($r->{certs_file}) // '') =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?)/s;
        $serials{ cert_info(spew("$r->{certs_file}.leaf.pem", $leaf))->{serial} }++ if $leaf;
    }
    is(scalar(grep { ($_->{pkiStatus} // '') eq '0' } @r), $n, "the same renewal $n times at once: all SUCCESS");
    is(scalar keys %serials, 1, "the same renewal $n times at once: one certificate for all")
        or diag(explain(\%serials));
    is(scalar rows_for($tid), 1, "the same renewal $n times at once: one database row");
}

# --- an expired password ---

{
    my $wait = $pw_short_at + 7 - time;
    sleep $wait if $wait > 0;
    log_watch();
    my $e = enroll($K[15], password => $pw_short);
    my @log = log_lines(qr/SCEP00073/);
    status_is($e, 2, 2, 'a password past its 5 seconds: FAILURE badRequest');
    ok((grep { /SCEP00073/ && /NDES event 29\b/ } @log), 'expired: NDES event 29 logged')
        or diag(@log);
    # and a fresh one from that page works at once
    $e = enroll($K[15], password => enroll_password('/enroll/admin-5s/'));
    status_is($e, 0, undef, 'a password from the 5-second page, used at once: SUCCESS');
}

# Every serial in the database is unique (the table says so too).
{
    my ($all) = db_query('SELECT count(*), count(DISTINCT serial) FROM scep_issued');
    ok($all && $all->[0] > 0 && $all->[0] == $all->[1],
       'the database: every serial once') or diag(join ' ', @{ $all || [] });
}

done_testing();
