# Licensed under the Apache License, Version 2.0; see LICENSE.
# Bad requests: unknown or missing operation (400, NDES event 11), wrong
# method for a read-only operation (405), too large (413, NDES event 15).
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use Apache::Test qw(-withtestmore);
use Apache::TestRequest qw(GET HEAD POST PUT);
use Apache::TestUtil qw(t_start_error_log_watch t_finish_error_log_watch);
use SCEPTest;

my $mscep = $SCEPTest::MSCEP;

# logged_ok CODE, REGEX, NAME: CODE logs a line matching REGEX.
sub logged_ok {
    my ($code, $re, $name) = @_;
    t_start_error_log_watch();
    $code->();
    # the log line may be written just after the response is sent
    my @lines;
    for (1 .. 20) {
        push @lines, t_finish_error_log_watch();
        last if grep { /$re/ } @lines;
        select(undef, undef, undef, 0.1);
        t_start_error_log_watch();
    }
    ok((grep { /$re/ } @lines), $name) or diag("error_log:\n", @lines);
}

my $event11 = qr/SCEP\d{5}: .*NDES event 11\b/;
for my $case (['no operation',        $mscep],
              ['no operation, message only', "$mscep?message=default"],
              ['empty operation',     "$mscep?operation="],
              ['unknown operation',   "$mscep?operation=GetCAFoo&message=0"],
              ['GetCAChain (not SCEP)', "$mscep?operation=GetCAChain&message=0"]) {
    my ($name, $path) = @$case;
    my $res;
    logged_ok(sub { $res = GET($path) }, $event11, "$name: NDES event 11 logged");
    is($res->code, 400, "$name: 400");
}

# Read-only operations take GET and HEAD only.
for my $op (qw(GetCACert GetCACaps GetNextCACert)) {
    for my $method (qw(POST PUT DELETE)) {
        my $res = scep_request($method, "$mscep?operation=$op&message=0", 'x',
                               'Content-Type' => 'application/octet-stream');
        is($res->code, 405, "$method $op: 405");
    }
}

# SCEPMaxRequestSize 1024 at /scep/small/.
my $res;
logged_ok(sub { $res = scep_get('/scep/small/', 'PKIOperation', 'A' x 3000) },
          qr/SCEP\d{5}: .*NDES event 15\b/,
          'GET message above SCEPMaxRequestSize: NDES event 15 logged');
is($res->code, 413, 'GET message above SCEPMaxRequestSize: 413');
$res = scep_get('/scep/small/', 'PKIOperation', 'A' x 900);
isnt($res->code, 413, 'GET message within SCEPMaxRequestSize: not 413');

$res = POST('/scep/small/?operation=PKIOperation', content => 'A' x 2000,
            'Content-Type' => 'application/x-pki-message');
is($res->code, 413, 'POST body above SCEPMaxRequestSize 1024: 413');
$res = POST('/scep/small/?operation=PKIOperation', content => 'A' x 900,
            'Content-Type' => 'application/x-pki-message');
isnt($res->code, 413, 'POST body within SCEPMaxRequestSize 1024: not 413');

# The default limit, 65536 bytes.
$res = POST("$mscep?operation=PKIOperation", content => 'A' x 70000);
is($res->code, 413, 'POST body above the default limit (65536): 413');
$res = POST("$mscep?operation=PKIOperation", content => 'A' x 60000);
isnt($res->code, 413, 'POST body within the default limit: not 413');

done_testing();
