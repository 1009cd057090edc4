# Licensed under the Apache License, Version 2.0; see LICENSE.
# Real SCEP clients from Debian packages enroll through the embedded CA,
# each with a one-time password fetched from the admin page's JSON as a
# script would: strongSwan pki --scep (AES and SHA-256, DES3 and SHA-1,
# RSA-PSS; it POSTs, the capabilities allowing it), micromdm scepclient
# (single DES, where SCEPAllowDES is On), certmonger (a private daemon;
# GET).  Every certificate is checked with openssl.  The scep_enroll
# virtual host of t/conf/extra.conf.in.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Spec;
use File::Temp qw(tempdir);
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SCEPTest;
use SCEPAdmin;
use SCEPEnroll;

admins_file();

my $O = 'mod_scep TEST ONLY';
my $URL = enroll_url($ENROLL_SCEP);

# The packages are installed by scripts/install-deps: a missing client
# is a failure, not a reason to skip.
my $pki = which_client('pki');
my $scepclient = which_client('scepclient');
my $certmonger = which_client('certmonger');
my $getcert = which_client('getcert');
ok($pki, 'strongSwan pki is installed (strongswan-pki)');
ok($scepclient, 'micromdm scepclient is installed (scep)');
ok($certmonger && $getcert, 'certmonger and getcert are installed (certmonger)');

# audit_ok SUBJECT_RE, LOG, NAME: an SCEP00076 line for that subject,
# password from alice.
sub audit_ok {
    my ($re, $log, $name) = @_;
    ok((grep { /SCEP00076: issued: .*subject $re, .*provider local, password from alice, client 127\.0\.0\.1/ }
        @$log), "$name: audit line SCEP00076") or diag(@$log);
}

# --- strongSwan pki ---

SKIP: {
    skip 'no pki', 1 unless $pki;
    my $d = tempdir('pki-XXXXXX', DIR => tmpdir());
    my ($rc, $out) = run($pki, '--scepca', '-u', $URL, '--caout', "$d/ca.pem",
                         '--raout', "$d/ra.pem", '--outform', 'pem');
    is($rc, 0, 'pki --scepca succeeds') or diag($out);
    # it names the RA files ra.pem, ra-2.pem...: sort them by name
    my ($ra_sig, $ra_enc);
    for my $f (glob "$d/ra*.pem") {
        my ($cn) = cns(pem_certs(slurp($f) // ''));
        $cn //= '';
        $ra_sig = $f if $cn =~ /Enrollment RA Signing/;
        $ra_enc = $f if $cn =~ /Enrollment RA Encryption/;
    }
    ok($ra_sig && $ra_enc, 'pki --scepca: both RA certificates') or diag($out);
    is_deeply([pem_certs(slurp("$d/ca.pem") // '')], [pem_certs(slurp(enroll_ca()))],
              'pki --scepca: the CA');

    my @cases = (['aes', 'sha256', 'pkcs1'], ['des3', 'sha1', 'pkcs1'],
                 ['aes', 'sha256', 'pss']);
    my @keys = new_keys(map { "pki-$_" } 0 .. $#cases);
    for my $i (0 .. $#cases) {
        my ($cipher, $digest, $padding) = @{ $cases[$i] };
        my $what = "pki --scep --cipher $cipher --digest $digest --rsa-padding $padding";
        my $cn = "pki $cipher $digest $padding";
        my $pw = enroll_password();
        my $size = access_log_size();
        log_watch();
        my ($prc, $err) = run_out("$d/cert-$i.pem", 'timeout', '60', $pki, '--scep',
            '-u', $URL, '-i', $keys[$i], '-d', "O=$O, CN=$cn", '-p', $pw,
            '--cacert-enc', $ra_enc // 'none', '--cacert-sig', $ra_sig // 'none',
            '--cacert', "$d/ca.pem", '--cipher', $cipher, '--digest', $digest,
            '--rsa-padding', $padding, '--outform', 'pem');
        is($prc, 0, "$what: succeeds") or diag($err);
        my @log = log_lines(qr/SCEP00076.*\Q$cn\E/);
        cert_ok("$d/cert-$i.pem", "$what: the certificate", key => $keys[$i],
                subject => "CN=$cn,O=$O");
        audit_ok(qr/CN=\Q$cn\E,O=\Q$O\E/, \@log, $what);
        my @acc = access_log_since($size, qr/operation=PKIOperation/);
        ok((grep { m{"POST /enroll/scep/pkiclient\.exe\?operation=PKIOperation HTTP/1\.[01]" 200 } } @acc),
           "$what: it POSTed PKIOperation (POSTPKIOperation advertised)") or diag(@acc);
        # its request has no KeyUsage: the general purpose template
        ok((grep { /SCEP00071/ } @log), "$what: no KeyUsage, NDES event 39") or diag(@log);
    }

    # The password of the last one is spent: the same client, another
    # key, the same password fails.
    my $pw = enroll_password();
    my @k = new_keys('pki-again-1', 'pki-again-2');
    my ($prc, $err) = run_out("$d/again-1.pem", 'timeout', '60', $pki, '--scep', '-u', $URL,
        '-i', $k[0], '-d', "O=$O, CN=pki once", '-p', $pw, '--cacert-enc', $ra_enc // 'none',
        '--cacert-sig', $ra_sig // 'none', '--cacert', "$d/ca.pem", '--outform', 'pem');
    is($prc, 0, 'pki --scep with a fresh password succeeds') or diag($err);
    ($prc, $err) = run_out("$d/again-2.pem", 'timeout', '60', $pki, '--scep', '-u', $URL,
        '-i', $k[1], '-d', "O=$O, CN=pki twice", '-p', $pw, '--cacert-enc', $ra_enc // 'none',
        '--cacert-sig', $ra_sig // 'none', '--cacert', "$d/ca.pem", '--outform', 'pem');
    isnt($prc, 0, 'pki --scep with the same password and another key fails');
    my ($tid) = $err =~ /transaction ID: (\S+)/;
    my @log = log_lines(qr/SCEP00073/);
    ok($tid && (grep { /SCEP00073: transaction \Q$tid\E: .*NDES event 43\b/ } @log),
       'the server refused it: the password is spent (NDES event 43)') or diag($err, @log);
    ok(!-s "$d/again-2.pem", 'and writes no certificate');

    # pki sends what it is told: where DES3 and SHA-1 are refused
    # (SCEPLegacyAlgorithms Off), its DES3 or SHA-1 requests fail.
    my $modern = enroll_url('/enroll/modern/pkiclient.exe');
    for my $c (['des3', 'sha256', qr/SCEP00083: .*content encryption algorithm not allowed/],
               ['aes', 'sha1', qr/SCEP00082: .*digest algorithm not allowed/]) {
        my ($cipher, $digest, $re) = @$c;
        log_watch();
        ($prc, $err) = run_out("$d/modern-$cipher.pem", 'timeout', '60', $pki, '--scep',
            '-u', $modern, '-i', $k[1], '-d', "O=$O, CN=pki modern", '-p', enroll_password(),
            '--cacert-enc', $ra_enc // 'none', '--cacert-sig', $ra_sig // 'none',
            '--cacert', "$d/ca.pem", '--cipher', $cipher, '--digest', $digest,
            '--outform', 'pem');
        isnt($prc, 0, "pki --cipher $cipher --digest $digest where SCEPLegacyAlgorithms is Off: fails");
        @log = log_lines($re);
        ok((grep { $_ =~ $re } @log), "pki --cipher $cipher --digest $digest: the server saw "
           . ($cipher eq 'des3' ? 'DES3' : 'SHA-1')) or diag($err, @log);
    }
}

# --- micromdm scepclient: single DES, SHA-1, POST ---

SKIP: {
    skip 'no scepclient', 1 unless $scepclient;
    my $d = tempdir('scepclient-XXXXXX', DIR => tmpdir());
    my $url = enroll_url('/enroll/des/pkiclient.exe');
    my $pw = enroll_password();
    my $size = access_log_size();
    log_watch();
    my ($rc, $out) = run('timeout', '60', $scepclient, '-server-url', $url,
                         '-private-key', "$d/key.pem", '-certificate', "$d/cert.pem",
                         '-cn', 'scepclient device', '-organization', $O, '-ou', 'Clients',
                         '-country', 'DE', '-challenge', $pw, '-debug');
    is($rc, 0, 'scepclient enrolls where SCEPAllowDES is On') or diag($out);
    like($out, qr/pkiStatus=SUCCESS/, 'scepclient: pkiStatus SUCCESS');
    my @log = log_lines(qr/SCEP00076.*scepclient device/);
    cert_ok("$d/cert.pem", 'scepclient: the certificate', key => "$d/key.pem",
            subject => "CN=scepclient device,OU=Clients,O=$O,C=DE");
    audit_ok(qr/CN=scepclient device,OU=Clients,O=\Q$O\E,C=DE/, \@log, 'scepclient');
    my @acc = access_log_since($size, qr/operation=PKIOperation/);
    ok((grep { m{"POST /enroll/des/pkiclient\.exe\?operation=PKIOperation HTTP/1\.[01]" 200 } } @acc),
       'scepclient: it POSTed PKIOperation') or diag(@acc);

    # Where single DES is not allowed it gets FAILURE badAlg, and the
    # password stays usable.
    $pw = enroll_password();
    log_watch();
    ($rc, $out) = run('timeout', '60', $scepclient, '-server-url', $URL,
                      '-private-key', "$d/key2.pem", '-certificate', "$d/cert2.pem",
                      '-cn', 'scepclient refused', '-challenge', $pw, '-debug');
    isnt($rc, 0, 'scepclient where SCEPAllowDES is Off: fails');
    like($out, qr/pkiStatus=FAILURE|badAlg|FAILURE/i, 'scepclient where SCEPAllowDES is Off: FAILURE')
        or diag($out);
    @log = log_lines(qr/SCEP00083/);
    ok((grep { /SCEP00083/ && /content encryption algorithm not allowed/ } @log),
       'SCEPAllowDES Off: SCEP00083, cipher not allowed') or diag(@log);
    ok(!-s "$d/cert2.pem", 'SCEPAllowDES Off: no certificate');
    my $e = enroll(new_keys('sc-after'), password => $pw);
    is($e->{status}, 0, 'SCEPAllowDES Off: the password was not spent');
}

# --- certmonger: a private daemon, GET ---

SKIP: {
    skip 'no certmonger', 1 unless $certmonger && $getcert;
    my $pw = enroll_password();
    my $size = access_log_size();
    log_watch();
    my ($rc, $out, $d) = certmonger_request($URL, 'modscep', "CN=certmonger device,O=$O", $pw);
    is($rc, 0, 'certmonger: getcert request -w succeeds') or diag($out);
    like($out, qr/status: MONITORING/, 'certmonger: the request is MONITORING (issued)')
        or diag($out);
    my @log = log_lines(qr/SCEP00076.*certmonger device/);
    # the request certmonger made, from its request file
    my ($reqfile) = glob "$d/requests/*";
    my $csr_pem = '';
    if ($reqfile && (slurp($reqfile) // '') =~ /^csr=(-----BEGIN CERTIFICATE REQUEST-----.*?-----END CERTIFICATE REQUEST-----)/ms) {
        ($csr_pem = $1) =~ s/^ //mg;
    }
    ok($csr_pem, 'certmonger: its request file holds the CSR');
    my $csr = File::Spec->catfile($d, 'csr.der');
    run('openssl', 'req', '-in', spew("$d/csr.pem", "$csr_pem\n"), '-outform', 'DER', '-out', $csr);
    cert_ok("$d/cert.pem", 'certmonger: the certificate', key => "$d/key.pem", csr => $csr);
    audit_ok(qr/O=\Q$O\E,CN=certmonger device|CN=certmonger device,O=\Q$O\E/, \@log, 'certmonger');
    my @acc = grep { /operation=PKIOperation/ } access_log_since($size, qr/operation=PKIOperation/);
    ok(@acc, 'certmonger: a PKIOperation') or diag(@acc);
    ok(!(grep { !m{"GET /enroll/scep/pkiclient\.exe\?operation=PKIOperation&message=\S+ HTTP/1\.[01]" 200 } } @acc),
       'certmonger: every PKIOperation is a GET, answered 200') or diag(@acc);
    my ($len) = map { length } grep { /GET/ } @acc;
    cmp_ok($len // 0, '>', 3000, 'certmonger: a long GET (LimitRequestLine)');
}

done_testing();
