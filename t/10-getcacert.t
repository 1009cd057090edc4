# Licensed under the Apache License, Version 2.0; see LICENSE.
# GetCACert (RFC 8894 4.2): RA + CA as a degenerate certs-only PKCS#7, or
# the CA alone as DER; any path suffix; message= accepted and ignored.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET HEAD);
use SCEPTest;

my $mscep = $SCEPTest::MSCEP;

# ra_cert_ok RESPONSE, NAME, EXPECTED PKI NAMES: a certs-only answer with
# exactly these certificates.
sub ra_cert_ok {
    my ($res, $name, @want) = @_;
    subtest $name => sub {
        is($res->code, 200, 'status 200') or diag($res->as_string);
        is($res->content_type, 'application/x-x509-ca-ra-cert', 'content type');
        my @certs = pkcs7_certs($res->content);
        is(scalar @certs, scalar @want, 'number of certificates')
            or diag("got: @{[cns(@certs)]}");
        is_deeply([cns(@certs)], [sort @want], 'the expected certificates');
        my ($none, $dump) = asn1_has_no_econtent($res->content);
        ok($none, 'no eContent in the degenerate SignedData') or diag($dump);
    };
}

my $res = scep_get($mscep, 'GetCACert');
ra_cert_ok($res, 'NDES service: RA encryption, RA signing, CA',
           qw(ra-enc ra-sign ca));
my $reference = $res->content;

# The same answer for every message= clients send and for the path
# suffixes they append.
for my $m (undef, 'default', '0', 'CAIdentifier', 'ca',
           'Device%20Management%20Identity%20Certificate', '') {
    my $r = scep_get($mscep, 'GetCACert', $m);
    my $label = defined $m ? "message=$m" : 'no message';
    is($r->code, 200, "$label: 200");
    ok($r->content eq $reference, "$label: same certificates");
}
for my $path ("$mscep/pkiclient.exe", '/certsrv/mscep/',
              '/certsrv/mscep/pkiclient.exe') {
    my $r = scep_get($path, 'GetCACert', 'CAIdentifier');
    is($r->code, 200, "$path: 200");
    ok($r->content eq $reference, "$path: same certificates");
}

$res = scep_head($mscep, 'GetCACert');
is($res->code, 200, 'HEAD: 200');
is($res->content_type, 'application/x-x509-ca-ra-cert', 'HEAD: content type');
is(length($res->content), 0, 'HEAD: no body');

# One certificate for both RA roles is sent once.
ra_cert_ok(scep_get('/cgi-bin/pkiclient.exe', 'GetCACert', '0'),
           'combined RA certificate appears once', qw(ra-both ca));

# An issuing CA with its chain: RA certificates, the issuing CA, the root.
ra_cert_ok(scep_get('/scep/sub/pkiclient.exe', 'GetCACert'),
           'CA chain', qw(ra-sub-enc ra-sub-sign subca ca));

# No RA: the CA certificate alone, as DER.
$res = scep_get('/scep/caonly/pkiclient.exe', 'GetCACert', 'default');
is($res->code, 200, 'CA only: 200');
is($res->content_type, 'application/x-x509-ca-cert', 'CA only: content type');
ok($res->content eq der_of('ca'), 'CA only: body is the DER of the CA certificate');

$res = scep_head('/scep/caonly/pkiclient.exe', 'GetCACert');
is($res->code, 200, 'CA only HEAD: 200');
is($res->content_type, 'application/x-x509-ca-cert', 'CA only HEAD: content type');

done_testing();
