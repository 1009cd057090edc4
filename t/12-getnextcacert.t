# Licensed under the Apache License, Version 2.0; see LICENSE.
# GetNextCACert (RFC 8894 4.7): the rollover CA certificate in a
# certs-only PKCS#7, inside a SignedData signed by the RA signing key.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET HEAD);
use SCEPTest;

my $mscep = $SCEPTest::MSCEP;

sub next_ca_ok {
    my ($path, $signer, $digest, $name) = @_;
    my $res = scep_get($path, 'GetNextCACert', '0');
    subtest $name => sub {
        is($res->code, 200, 'status 200') or diag($res->as_string);
        is($res->content_type, 'application/x-x509-next-ca-cert', 'content type');
        my ($ok, $inner, $signers, $out) =
            cms_signed_content($res->content, pki("$signer.pem"), pki('ca.pem'));
        ok($ok, 'SignedData verifies with the RA certificate and the CA')
            or diag($out);
        is_deeply([cns(@$signers)], [$signer], "signed by $signer");
        is_deeply([cns(pkcs7_certs($inner // ''))], ['ca-next'],
                  'content: certs-only PKCS#7 with the next CA certificate');
        is_deeply([cms_digest($res->content)], [$digest], "digest $digest");
    };
}

next_ca_ok($mscep, 'ra-sign', 'sha256', 'NDES service, default hash');
next_ca_ok('/cgi-bin/pkiclient.exe', 'ra-both', 'sha512', 'SCEPHashAlgorithm SHA512');
next_ca_ok('/scep/modern/', 'ra-sign', 'sha384', 'SCEPHashAlgorithm SHA384');

my $res = scep_head($mscep, 'GetNextCACert');
is($res->code, 200, 'HEAD: 200');
is($res->content_type, 'application/x-x509-next-ca-cert', 'HEAD: content type');

for my $path ('/scep/caonly/', '/scep/ca2/pkiclient.exe', '/scep/store/') {
    is(scep_get($path, 'GetNextCACert')->code, 404,
       "$path: no rollover CA configured: 404");
}

done_testing();
