# Licensed under the Apache License, Version 2.0; see LICENSE.
# Submission providers (mod_scep.h): what the RA hands a CA, through the
# test-only provider "capture" of t/c-modules/scep_capture, which writes
# it to t/state/capture and answers PENDING, REJECTED or cannot be asked.
# The CA request is the device's PKCS#10 signed by the RA signing
# certificate; template, transaction, administrator and client come with
# it.  PENDING spends the password, REJECTED and errors do not; every
# answer is a CertRep; an error is PENDING for the device (the RA keeps
# the request in its spool).  An unknown provider stops httpd.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Spec;
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SCEPTest;
use SCEPAdmin;
use SCEPEnroll;

admins_file();

my $O = 'mod_scep TEST ONLY';
my $capture = File::Spec->catdir(Apache::Test::vars('t_state'), 'capture');
my @K = new_keys(map { "p52-$_" } 1 .. 6);

# captured TRANSID: what the provider wrote for a transaction: (info
# hash, RA request DER, CSR DER).
sub captured {
    my $tid = shift;
    (my $name = $tid) =~ s/[^A-Za-z0-9_-]/_/g;
    my $info = slurp("$capture/$name.info");
    my %i = defined $info ? map { /^(\w+)=(.*)$/ ? ($1 => $2) : () } split /\n/, $info : ();
    return (\%i, slurp("$capture/$name.ra.der"), slurp("$capture/$name.csr.der"));
}

sub reply_is {
    my ($e, $status, $fail, $name) = @_;
    my $r = $e->{rep};
    subtest $name => sub {
        is($e->{http}{code}, 200, 'HTTP 200');
        is($e->{http}{ctype}, 'application/x-pki-message', 'Content-Type application/x-pki-message');
        is($r->{verified}, 1, 'a CertRep signed by the RA') or diag($r->{text});
        is($r->{signer_is_ra}, 1, 'the RA signing certificate signed it');
        is($r->{transactionID}, $e->{msg}{transid}, 'transactionID copied');
        is($r->{recipientNonce_ok}, 1, 'recipientNonce = our senderNonce');
        is($r->{pkiStatus}, $status, "pkiStatus $status");
        is($r->{failInfo}, $fail // '-', 'failInfo ' . ($fail // 'absent'));
        is($r->{has_content}, 0, 'no pkcsPKIEnvelope') if $status != 0;
    } or diag(enroll_diag($e));
}

ok(-d $capture, 'the capture provider made its directory at startup');

# --- REJECTED: FAILURE with the provider's failInfo, password kept ---

{
    my $pw = enroll_password('/enroll/admin/', 'bob');
    log_watch();
    my $e = enroll($K[0], password => $pw, path => '/enroll/reject/pkiclient.exe',
                   subject => [[O => $O], [CN => 'captured device']],
                   ext => ['keyUsage = digitalSignature']);
    my @log = log_lines(qr/SCEP00078/);
    reply_is($e, 2, 2, 'REJECTED (badRequest): FAILURE badRequest');
    my $tid = $e->{msg}{transid};
    ok((grep { /SCEP00078: transaction \Q$tid\E: the CA refused the request: the capture provider rejects every request \(NDES event 42\)/ } @log),
       'REJECTED: SCEP00078 with the provider\'s reason') or diag(@log);

    # what the provider got
    my ($info, $ra, $csr) = captured($tid);
    is($info->{template}, 'Signature', 'template_name: the template the KeyUsage picked (SCEPSignatureTemplate)');
    is($info->{transaction_id}, $tid, 'transaction_id');
    is($info->{requester}, 'bob', 'requester: the administrator who issued the password');
    is($info->{client_ip}, '127.0.0.1', 'client_ip');
    is($info->{renewal}, 0, 'no renewal signer for an initial enrollment');
    is($csr, slurp($e->{csr}), 'csr: the device\'s PKCS#10, as sent');
    my ($ok, $content, $signers, $out) = cms_signed_content($ra, undef, enroll_ca());
    ok($ok, 'ra_request verifies against the CA (openssl cms -verify -CAfile)') or diag($out);
    is($content, slurp($e->{csr}), 'ra_request: its content is the device\'s PKCS#10');
    is_deeply($signers, [pem_certs(slurp(ra_sign()))], 'ra_request: signed by the RA signing certificate');
    is_deeply([cms_digest($ra // '')], ['sha256'], 'ra_request: SHA-256 (SCEPHashAlgorithm default)');

    # the password was not spent: the embedded CA takes it
    $e = enroll($K[1], password => $pw, ext => ['keyUsage = digitalSignature']);
    is($e->{status}, 0, 'REJECTED: the password is still good for the same KeyUsage')
        or diag(enroll_diag($e));
}

# Another failInfo (badTime) comes through as it is.
{
    my $pw = enroll_password();
    my $e = enroll($K[2], password => $pw, path => '/enroll/reject-badtime/pkiclient.exe');
    reply_is($e, 2, 3, 'REJECTED with failInfo badTime: FAILURE badTime');
    my ($info) = captured($e->{msg}{transid});
    is($info->{template}, 'IPSECIntermediateOffline', 'no KeyUsage: the general purpose template');
    is($info->{requester}, 'alice', 'requester alice');
}

# --- the CA cannot be asked: PENDING (the request is spooled), password
# kept (t/56-spool.t follows the spool through) ---

{
    my $pw = enroll_password();
    log_watch();
    my $e = enroll($K[3], password => $pw, path => '/enroll/error/pkiclient.exe');
    my @log = log_lines(qr/SCEP00092/);
    reply_is($e, 3, undef, 'provider error: PENDING');
    ok((grep { /SCEP00092: transaction \Q$e->{msg}{transid}\E: the CA \(provider capture\) could not take the request \(NDES event 31\)/ } @log),
       'provider error: SCEP00092 (NDES event 31)') or diag(@log);
    $e = enroll($K[3], password => $pw);
    is($e->{status}, 0, 'provider error: the password is still good') or diag(enroll_diag($e));
}

# --- PENDING: CertRep PENDING, the password is spent ---

{
    my $pw = enroll_password();
    log_watch();
    my $e = enroll($K[4], password => $pw, path => '/enroll/pending/pkiclient.exe');
    my @log = log_lines(qr/SCEP00077/);
    reply_is($e, 3, undef, 'PENDING: CertRep PENDING');
    my $tid = $e->{msg}{transid};
    (my $name = $tid) =~ s/[^A-Za-z0-9_-]/_/g;
    ok((grep { /SCEP00077: pending: transaction \Q$tid\E, request capture-\Q$name\E, template IPSECIntermediateOffline, provider capture/ } @log),
       'PENDING: SCEP00077 with the CA\'s request id') or diag(@log);
    my ($info, $ra, $csr) = captured($tid);
    is($csr, slurp($e->{csr}), 'PENDING: the provider got the PKCS#10');
    my ($ok, $content) = cms_signed_content($ra, undef, enroll_ca());
    ok($ok && $content eq slurp($e->{csr}), 'PENDING: ra_request verifies, content the PKCS#10');

    # The device resends the same request (same transaction, key and
    # PKCS#10), as RFC 8894 allows while it waits: its password is spent,
    # so the RA asks the provider for what the earlier request got
    # (lookup_only), and the provider says PENDING.
    my $again = enroll($K[4], csr => $e->{csr}, transid => $tid,
                       path => '/enroll/pending/pkiclient.exe');
    my @lookups = grep { $_ eq "lookup $name" } split /\n/, slurp("$capture/lookups") // '';
    is(scalar @lookups, 1, 'resent after PENDING: the RA asks the provider (lookup_only)');
    is($again->{http}{ctype}, 'application/x-pki-message', 'resent after PENDING: a CertRep');
    {
        is($again->{rep}{pkiStatus}, 3, 'resent after PENDING: PENDING again, as the CA says');
    }

    my $e2 = enroll($K[5], password => $pw);
    reply_is($e2, 2, 2, 'PENDING spent the password: another request with it fails');
}

# --- an unknown provider stops httpd, naming the known ones ---

{
    my $vars = Apache::Test::config()->{vars};
    my $capture_so = File::Spec->catfile($vars->{t_dir}, 'c-modules', 'scep_capture',
                                         '.libs', 'mod_scep_capture.so');
    ok(-f $capture_so, 'the capture module was built');
    my $pki = pki();
    my $conf = <<CONF;
LoadModule scep_capture_module "$capture_so"
<Location /scep/>
    SetHandler scep
    SCEPCACertificateFile "$pki/enroll-ca.pem"
    SCEPRASigningCertificateFile "$pki/enroll-ra-sign.pem"
    SCEPRASigningKeyFile "$pki/enroll-ra-sign.key"
    SCEPRAEncryptionCertificateFile "$pki/enroll-ra-enc.pem"
    SCEPRAEncryptionKeyFile "$pki/enroll-ra-enc.key"
    SCEPProvider nosuch some arguments
</Location>
CONF
    my $r = try_httpd($conf);
    my $all = "$r->{out}\n$r->{log}";
    ok(!$r->{started} && $r->{rc} != 0, 'SCEPProvider nosuch: httpd refuses to start')
        or diag("rc $r->{rc}\n$all");
    like($all, qr/SCEPProvider: unknown provider 'nosuch'/, 'the message names it') or diag($all);
    my ($known) = $all =~ /\(known: ([^)]*)\)/;
    is_deeply([sort split /,\s*/, $known // ''], [qw(capture local scep)],
              'and lists the registered providers: capture, local, scep') or diag($all);

    # the same with the capture provider starts and serves
    $conf =~ s/SCEPProvider nosuch some arguments/SCEPProvider capture "$r->{dir}-capture" pending/;
    $r = try_httpd($conf, '/scep/?operation=GetCACaps');
    ok($r->{started}, 'SCEPProvider capture DIR pending: httpd starts')
        or diag("rc $r->{rc}\n$r->{out}\n$r->{log}");
    is($r->{res} && $r->{res}->code, 200, 'and serves');

    # a provider's own argument check stops httpd too
    $conf =~ s/SCEPProvider capture "[^"]*" pending/SCEPProvider capture only-a-directory/;
    $r = try_httpd($conf);
    ok(!$r->{started} && $r->{rc} != 0, 'SCEPProvider capture with bad arguments: httpd refuses to start');
    like("$r->{out}\n$r->{log}", qr/SCEPProvider capture DIR pending\|reject\|error/,
         'with the provider\'s message') or diag("$r->{out}\n$r->{log}");
}

done_testing();
