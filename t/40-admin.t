# Licensed under the Apache License, Version 2.0; see LICENSE.
# The administrator page (SetHandler scep-admin): httpd authenticates and
# authorizes, the page refuses plain HTTP unless allowed, the HTML NDES
# scrapers read (UTF-16LE, or UTF-8), the JSON form, methods, the audit
# line, password length, a full cache (per CA), expiry, startup warnings.
# (Locations in t/conf/extra.conf.in and t/conf/ssl/ssl.conf.in.)
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/lib";
use Encode ();
use Time::HiRes ();
use Time::Local qw(timegm);
use Apache::Test qw(-withtestmore);
use Apache::TestRequest ();
use SCEPTest;
use SCEPAdmin;

admins_file();

my $ADMIN = '/pw/admin/';
my $NO_PERMISSION = 'You do not have sufficient permission to enroll with SCEP.';
my ($md5_grouped, $md5, $sha256) = thumbprints(pki('ca.pem'));


my $PW_RE = qr/The enrollment challenge password is: <B> ([0-9A-F]+) <\/B>/;
my $TP_RE = qr/The thumbprint \(hash value\) for the CA certificate is: <B> (\S{8} \S{8} \S{8} \S{8}) <\/B>/;

# page_ok RESPONSE, NAME: a 200 HTML page in UTF-16LE with a BOM that
# holds a password; returns (text, password).
sub page_ok {
    my ($res, $name) = @_;
    my ($text, $bom) = html_text($res);
    my ($pw) = $text =~ $PW_RE;
    subtest $name => sub {
        is($res->code, 200, 'status 200') or diag($res->as_string);
        like($res->header('Content-Type') // '', qr{^text/html;\s*charset=utf-16}i,
             'text/html in UTF-16');
        ok($bom, 'starts with the UTF-16LE byte order mark FF FE');
        is(Encode::encode('UTF-16LE', $text), substr($res->content, 2),
           'the rest is UTF-16LE throughout');
        like($pw // '', qr/^[0-9A-F]{16}$/, 'a password of 16 hex characters')
            or diag($text);
        my ($tp) = $text =~ $TP_RE;
        is($tp, $md5_grouped, 'the CA thumbprint: its MD5 in four groups, as openssl says');
        like($text, qr/This password can be used only once and will expire within 60 minutes\./,
             "NDES's validity sentence");
        is($res->header('Cache-Control'), 'no-store', 'Cache-Control: no-store');
    };
    return ($text, $pw);
}

# json_ok RESPONSE, NAME[, LENGTH]: a 201 JSON answer; returns the hash.
sub json_ok {
    my ($res, $name, $len) = @_;
    $len //= 16;
    my $j = decode_json_ok($res);
    subtest $name => sub {
        is($res->code, 201, 'status 201 Created') or diag($res->as_string);
        like($res->header('Content-Type') // '', qr{^application/json}, 'application/json');
        ok($j, 'a JSON object') or return;
        like($j->{password} // '', qr/^[0-9A-F]{$len}$/, "password: $len hex characters");
        like($j->{expires} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
             'expires: ISO 8601 in UTC');
        if (($j->{expires} // '') =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$/) {
            my $t = timegm($6, $5, $4, $3, $2 - 1, $1);
            cmp_ok(abs($t - (time + 3600)), '<=', 120, 'expires in 60 minutes')
                or diag("expires $j->{expires}, now " . gmtime);
        }
        is($j->{ca_thumbprint_sha256}, $sha256, 'ca_thumbprint_sha256 as openssl says');
        is($j->{ca_thumbprint_md5}, $md5, 'ca_thumbprint_md5 as openssl says');
        is($res->header('Cache-Control'), 'no-store', 'Cache-Control: no-store');
    };
    return $j // {};
}

# --- authentication and authorization (httpd's, before the page) ---

{
    my $res = admin_request('GET', $ADMIN, undef);
    is($res->code, 401, 'no credentials: 401');
    like($res->header('WWW-Authenticate') // '', qr/^Basic /, 'no credentials: Basic challenge');
    unlike($res->content, $PW_RE, 'no credentials: no password');

    $res = admin_request('GET', $ADMIN, ['alice', 'not-her-password']);
    is($res->code, 401, 'wrong password: 401');

    for my $json (0, 1) {
        $res = admin_request('GET', $ADMIN, 'mallory', json => $json);
        my $what = $json ? 'JSON' : 'HTML';
        is($res->code, 403, "authenticated but not allowed ($what): 403");
        {
            like($res->content, qr/\Q$NO_PERMISSION\E/,
                 "authenticated but not allowed ($what): NDES's sentence");
        }
        unlike($res->content, qr/"password"|$PW_RE/, "authenticated but not allowed ($what): no password");
    }

    # Without any authentication configured the page refuses itself.
    log_watch();
    $res = admin_request('GET', '/pw/admin-noauth/', undef);
    my ($text) = html_text($res);
    is($res->code, 403, 'no authentication configured: 403');
    like($text, qr/\Q$NO_PERMISSION\E/, 'no authentication configured: the sentence');
    unlike($text, $PW_RE, 'no authentication configured: no password');
    my ($r2, $j) = admin_json('/pw/admin-noauth/', undef);
    is($r2->code, 403, 'no authentication configured (JSON): 403');
    is($j && $j->{error}, 'forbidden', 'no authentication configured (JSON): error forbidden');
    ok(!exists(($j // {})->{password}), 'no authentication configured (JSON): no password');
    my @log = log_lines(qr/SCEP00051/);
    ok((grep { /SCEP00051/ && m{/pw/admin-noauth/} } @log),
       'no authentication configured: SCEP00051 names the page') or diag(@log);
}

# --- HTTPS only, unless SCEPAdminAllowHTTP On ---

{
    my $tls = '/pw/admin-tls/';
    log_watch();
    my $res = admin_request('GET', $tls, 'alice');
    my ($text) = html_text($res);
    is($res->code, 403, 'plain HTTP without SCEPAdminAllowHTTP: 403');
    like($text, qr/only given out over HTTPS/, 'plain HTTP: the page says HTTPS');
    unlike($text, $PW_RE, 'plain HTTP: no password');
    is($res->header('Cache-Control'), 'no-store', 'plain HTTP: Cache-Control: no-store');
    my ($r2, $j) = admin_json($tls, 'alice');
    is($r2->code, 403, 'plain HTTP (JSON): 403');
    is($j && $j->{error}, 'https_required', 'plain HTTP (JSON): error https_required');
    ok(!exists(($j // {})->{password}), 'plain HTTP (JSON): no password');
    my @log = log_lines(qr/SCEP00050/);
    ok((grep { /SCEP00050/ && /\balice\b/ } @log), 'plain HTTP: SCEP00050 naming the user')
        or diag(@log);

    # The same page over HTTPS (the scep_ssl virtual host).
    $res = admin_request('GET', $tls, 'alice', https => 1);
    ok($res->header('Client-SSL-Cipher'), 'HTTPS: the answer came over TLS')
        or diag($res->as_string);
    page_ok($res, 'HTTPS: the HTML page');
    $r2 = admin_request('GET', $tls, 'bob', https => 1, json => 1);
    json_ok($r2, 'HTTPS: the JSON form');
    $res = admin_request('GET', $tls, undef, https => 1);
    is($res->code, 401, 'HTTPS without credentials: 401');
    $res = admin_request('GET', $tls, 'mallory', https => 1);
    is($res->code, 403, 'HTTPS, authenticated but not allowed: 403');
    {
        like($res->content, qr/\Q$NO_PERMISSION\E/, 'HTTPS, not allowed: the sentence');
    }
    # SCEPAdminAllowHTTP On still serves HTTPS
    page_ok(admin_request('GET', $ADMIN, 'alice', https => 1),
            'HTTPS to a page that also allows HTTP');
}

# --- the HTML page ---

my %seen;
{
    log_watch();
    my ($text, $pw) = page_ok(admin_request('GET', $ADMIN, 'alice'), 'the HTML page (UTF-16LE)');
    my @log = log_lines(qr/SCEP00054/);
    my @audit = grep { /SCEP00054/ } @log;
    is(scalar @audit, 1, 'one audit line (SCEP00054) per password') or diag(@log);
    like($audit[0] // '', qr/\bnotice\b/, 'the audit line is at notice level');
    like($audit[0] // '', qr/issued to alice\b/, 'the audit line names the administrator');
    like($audit[0] // '', qr/mod_scep TEST ONLY Root CA/, 'the audit line names the CA');
    like($audit[0] // '', qr/valid until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/,
         'the audit line says until when');
    ok($pw && !(grep { /\Q$pw\E/i } @log), 'the password is nowhere in the error_log')
        or diag(@log);
    $seen{$pw // ''}++;

    like($text, qr/<HTML>.*<\/HTML>/s, 'an HTML document');
    my (undef, $pw2) = page_ok(admin_request('GET', $ADMIN, 'bob'), 'the page again (bob)');
    isnt($pw2, $pw, 'every load gives a new password');
    $seen{$pw2 // ''}++;
}

{
    my $res = admin_request('GET', '/pw/admin-utf8/', 'alice');
    is($res->code, 200, 'SCEPAdminEncoding UTF-8: 200');
    like($res->header('Content-Type') // '', qr{^text/html;\s*charset=utf-8}i,
         'SCEPAdminEncoding UTF-8: text/html in UTF-8');
    isnt(substr($res->content, 0, 2), "\xff\xfe", 'SCEPAdminEncoding UTF-8: no UTF-16 byte order mark');
    unlike($res->content, qr/\0/, 'SCEPAdminEncoding UTF-8: no NUL bytes');
    my ($pw) = $res->content =~ $PW_RE;
    like($pw // '', qr/^[0-9A-F]{16}$/, 'SCEPAdminEncoding UTF-8: the password, read as is');
    my ($tp) = $res->content =~ $TP_RE;
    is($tp, $md5_grouped, 'SCEPAdminEncoding UTF-8: the thumbprint');
    like($res->content, qr/will expire within 60 minutes\./, 'SCEPAdminEncoding UTF-8: the sentence');
}

# --- JSON ---

{
    my $j = json_ok(admin_request('GET', $ADMIN, 'alice', json => 1), 'JSON by Accept: application/json');
    $seen{$j->{password} // ''}++;
    $j = json_ok(admin_request('GET', "${ADMIN}?format=json", 'alice'), 'JSON by ?format=json');
    $seen{$j->{password} // ''}++;
    $j = json_ok(admin_request('POST', $ADMIN, 'bob', json => 1, body => '{}'),
                 'JSON by POST');
    $seen{$j->{password} // ''}++;
    $j = json_ok(admin_request('POST', "${ADMIN}?format=json", 'bob', body => '{"reason":"test"}'),
                 'JSON by POST ?format=json');
    $seen{$j->{password} // ''}++;
    is(scalar(grep { /^[0-9A-F]{16}$/ } keys %seen), 6, 'six passwords, all different')
        or diag(join ' ', sort keys %seen);

    for my $m (qw(PUT DELETE)) {
        my $res = admin_request($m, $ADMIN, 'alice', json => 1,
                                $m eq 'PUT' ? (body => '{}') : ());
        is($res->code, 405, "$m: 405");
        {
            like($res->header('Allow') // '', qr/\bGET\b/, "$m: Allow lists GET");
            like($res->header('Allow') // '', qr/\bPOST\b/, "$m: Allow lists POST");
        }
        unlike($res->content, qr/"password"/, "$m: no password");
    }
}

# --- SCEPPasswordLength ---

{
    my $res = admin_request('GET', '/pw/admin-long/', 'alice');
    my ($text) = html_text($res);
    my ($pw) = $text =~ $PW_RE;
    like($pw // '', qr/^[0-9A-F]{24}$/, 'SCEPPasswordLength 12: 24 hex characters in the HTML')
        or diag($text);
    json_ok(admin_request('GET', '/pw/admin-long/', 'alice', json => 1),
            'SCEPPasswordLength 12: JSON', 24);
}

# --- a full cache: SCEPPasswordMax 3, its own CA ---

{
    my $full = '/full/admin/';
    my (undef, $md5_2, $sha256_2) = thumbprints(pki('ca2.pem'));
    my @pw;
    for my $i (1 .. 3) {
        my ($res, $j) = admin_json($full, 'alice');
        is($res->code, 201, "SCEPPasswordMax 3: password $i of 3") or diag($res->as_string);
        push @pw, $j->{password} if $j;
        if ($i == 1) {
            is($j && $j->{ca_thumbprint_sha256}, $sha256_2, 'a password for its own CA (ca2)');
            is($j && $j->{ca_thumbprint_md5}, $md5_2, 'its own CA (MD5)');
        }
    }
    log_watch();
    my $res = admin_request('GET', $full, 'alice');
    my ($text, $bom) = html_text($res);
    is($res->code, 503, 'the fourth: 503');
    ok($bom, 'the fourth: UTF-16LE HTML');
    like($text, qr/The password cache is full\./, 'the fourth: "The password cache is full."');
    unlike($text, $PW_RE, 'the fourth: no password');
    is($res->header('Cache-Control'), 'no-store', 'the fourth: Cache-Control: no-store');
    my ($r2, $j) = admin_json($full, 'bob');
    is($r2->code, 503, 'full (JSON): 503');
    is($j && $j->{error}, 'cache_full', 'full (JSON): error cache_full');
    ok(!exists(($j // {})->{password}), 'full (JSON): no password');
    my @log = log_lines(qr/SCEP00053/);
    ok((grep { /SCEP00053/ } @log), 'full: SCEP00053 in the error_log') or diag(@log);
    # other CAs keep their own count
    json_ok(admin_request('GET', $ADMIN, 'alice', json => 1), 'another CA is not full');
}

# --- expiry: one password at a time, valid 5 seconds ---

{
    my $exp = '/expire/admin/';
    my $res = admin_request('GET', $exp, 'alice');
    my $t0 = Time::HiRes::time();
    my ($text) = html_text($res);
    is($res->code, 200, 'SCEPPasswordValidity 5s: a password');
    my ($p1) = $text =~ $PW_RE;
    like($text, qr/This password can be used only once and will expire within 5 seconds\./,
         'SCEPPasswordValidity 5s: the sentence says 5 seconds');
    my ($r2, $j) = admin_json($exp, 'alice');
    is($r2->code, 503, 'SCEPPasswordMax 1: the second is refused (cache full)');
    is($j && $j->{error}, 'cache_full', 'SCEPPasswordMax 1: cache_full');
    # a request that failed does not spend it; it still counts
    my $r = race('/expire/race/', $p1, 160, fail => 1);
    is($r->{word}, 'RELEASED', 'a failed request gives the password back');
    is((admin_json($exp, 'alice'))[0]->code, 503, 'still full');
    # issued before $t0, so expired 5 s after it
    Time::HiRes::sleep(0.1) while Time::HiRes::time() - $t0 < 6;
    ($r2, $j) = admin_json($exp, 'alice');
    is($r2->code, 201, 'after 6 s the expired password no longer counts: a new one')
        or diag($r2->as_string);
    like($j && $j->{expires} // '', qr/Z$/, 'the new one expires') if $j;
    is(race('/expire/race/', $p1, 160)->{word}, 'REJECT', 'the expired password is refused');
    my $p2 = $j ? $j->{password} : 'none';
    is(race('/expire/race/', $p2, 160)->{word}, 'COMMITTED', 'the new one is accepted');
    ($r2, $j) = admin_json($exp, 'alice');
    is($r2->code, 201, 'a spent password no longer counts either');
}

# --- startup: SCEPEnforcePassword Off warns (SCEP00006) ---

{
    my $log = slurp(Apache::Test::vars('t_logs') . '/error_log') // '';
    my @warn = grep { /SCEP00006/ } split /\n/, $log;
    ok((grep { m{\bwarn\b.*/noenforce/} } @warn),
       'SCEPEnforcePassword Off (own CA): SCEP00006 warning naming the section')
        or diag(@warn);
    ok(!(grep { m{/pw/|/single/|/certsrv/} } @warn), 'no SCEP00006 for services that enforce')
        or diag(@warn);
    {
        ok((grep { m{/noenforce-inherit/} } @warn),
           'SCEPEnforcePassword Off (CA inherited from the server): SCEP00006 warning');
    }
}

done_testing();
