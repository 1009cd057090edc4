# Licensed under the Apache License, Version 2.0; see LICENSE.
#
# Helpers for the challenge password tests (t/40-admin.t, t/41-race.t,
# t/42-restart.t): the administrators' password file, admin page
# requests, the test-only race handler (t/c-modules/scep_race), requests
# fired concurrently from several processes, graceful restarts.
package SCEPAdmin;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use Encode ();
use File::Spec;
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use POSIX ();
use HTTP::Request;
use LWP::UserAgent;
use Apache::Test ();
use Apache::TestRequest ();
use Apache::TestUtil qw(t_start_error_log_watch t_finish_error_log_watch);
use SCEPTest;

our @EXPORT = qw(
    admins_file write_admins admin_request admin_json html_text
    race race_url parallel_get graceful server_info thumbprints
    log_watch log_lines decode_json_ok
);

# TEST ONLY credentials: alice and bob may have passwords, mallory may
# log in but is not allowed any (t/conf/extra.conf.in).
our %ADMINS = (
    alice   => 'alice-TEST-ONLY-pw',
    bob     => 'bob-TEST-ONLY-pw',
    mallory => 'mallory-TEST-ONLY-pw',
);

# write_admins FILE: an htpasswd file (SHA-512 crypt) for %ADMINS,
# written atomically.
sub write_admins {
    my $file = shift;
    my @salt = ('a' .. 'z', 'A' .. 'Z', 0 .. 9);
    my $text = '';
    for my $user (sort keys %ADMINS) {
        my $salt = join '', map { $salt[rand @salt] } 1 .. 16;
        my $hash = crypt($ADMINS{$user}, "\$6\$$salt\$");
        die "crypt() cannot do SHA-512 here" unless $hash && $hash =~ /^\$6\$/;
        $text .= "$user:$hash\n";
    }
    spew("$file.new.$$", $text);
    rename "$file.new.$$", $file or die "rename $file: $!";
    return $file;
}

# admins_file: the AuthUserFile of t/conf/extra.conf.in, made if missing.
sub admins_file {
    my $file = File::Spec->catfile(Apache::Test::vars('t_state'),
                                   'admins.htpasswd');
    write_admins($file) unless -s $file;
    return $file;
}

sub _base {
    my %opt = @_;
    if ($opt{https}) {
        my $old = Apache::TestRequest::module();
        Apache::TestRequest::module('scep_ssl');
        my $hp = Apache::TestRequest::hostport();
        Apache::TestRequest::module($old // 'default');
        return "https://$hp";
    }
    return $opt{base} // ('http://' . Apache::TestRequest::hostport());
}

# admin_request METHOD, PATH, USER, OPTIONS: a request to an admin page
# as USER (undef: no credentials; a [user, password] pair: those).
# OPTIONS: json => 1 (Accept: application/json), https => 1 (the
# scep_ssl virtual host), base => 'http://host:port' (another server),
# body => TEXT, content_type => TYPE, headers => [...].
sub admin_request {
    my ($method, $path, $user, %opt) = @_;
    my @h = @{ $opt{headers} || [] };
    if (defined $user) {
        my ($u, $p) = ref $user ? @$user : ($user, $ADMINS{$user});
        push @h, Authorization => 'Basic ' . encode_base64("$u:$p", '');
    }
    push @h, Accept => 'application/json' if $opt{json};
    my $req = HTTP::Request->new($method => _base(%opt) . $path, \@h);
    if (defined $opt{body}) {
        $req->content($opt{body});
        $req->header('Content-Length' => length $opt{body});
        $req->header('Content-Type' => $opt{content_type} // 'application/json');
    }
    return _ua()->request($req);
}

# One client for the admin pages: it trusts Apache::Test's CA (the
# scep_ssl virtual host's certificate) and checks the host name, and it
# does not parse the HTML head (LWP cannot read UTF-16 there).
my $UA;
sub _ua {
    return $UA if $UA;
    my $vars = Apache::Test::vars();
    $UA = LWP::UserAgent->new(
        timeout => 30, keep_alive => 0, parse_head => 0,
        ssl_opts => { verify_hostname => 1,
                      SSL_ca_file => "$vars->{sslca}/$vars->{sslcaorg}/certs/ca.crt" });
    return $UA;
}

# decode_json_ok RESPONSE: the JSON body as a hash, or undef.
sub decode_json_ok {
    my $res = shift;
    my $data = eval { JSON::PP->new->decode($res->content) };
    return ref $data eq 'HASH' ? $data : undef;
}

# admin_json PATH, USER, OPTIONS: GET the JSON form; (response, hash).
sub admin_json {
    my ($path, $user, %opt) = @_;
    my $res = admin_request('GET', $path, $user, json => 1, %opt);
    return ($res, decode_json_ok($res));
}

# html_text RESPONSE: the HTML as Perl text, decoded as the page says:
# UTF-16LE after a byte order mark (charset utf-16), or UTF-8.  Second
# value: whether a UTF-16LE byte order mark was there.
sub html_text {
    my $res = shift;
    my $raw = $res->content;
    my $ct = $res->header('Content-Type') // '';
    if (substr($raw, 0, 2) eq "\xff\xfe") {
        return (Encode::decode('UTF-16LE', substr($raw, 2)), 1);
    }
    if ($ct =~ /charset=utf-16/i) {
        return (Encode::decode('UTF-16', $raw), 0);
    }
    return (Encode::decode('UTF-8', $raw), 0);
}

# race_url PATH, PASSWORD, KU, EXTRA: the race handler's URL.
sub race_url {
    my ($path, $pw, $ku, %extra) = @_;
    my $q = "pw=$pw&ku=" . ($ku // -1);
    $q .= join '', map { "&$_=$extra{$_}" } sort keys %extra;
    return "$path?$q";
}

sub _parse_race {
    my ($code, $body) = @_;
    $body //= '';
    my ($word) = $body =~ /^(\S+)/;
    my ($pid) = $body =~ /\bpid=(\d+)/;
    my ($gen) = $body =~ /\bgen=(\d+)/;
    my ($admin) = $body =~ /\badmin=(\S+)/;
    return { code => $code, word => $word // '(none)', pid => $pid,
             gen => $gen, admin => $admin, body => $body };
}

# race PATH, PASSWORD, KU, OPTIONS: one request to the race handler;
# a hash: code, word (COMMITTED, RELEASED, REJECT, USED...), pid, gen,
# admin, body.  OPTIONS: base => URL of another server, and query
# parameters (fail => 1, sleep => MS).
sub race {
    my ($path, $pw, $ku, %opt) = @_;
    my $base = delete $opt{base};
    my $url = ($base // 'http://' . Apache::TestRequest::hostport())
              . race_url($path, $pw, $ku, %opt);
    my $res = LWP::UserAgent->new(timeout => 30, keep_alive => 0)->get($url);
    return _parse_race($res->code, $res->content);
}

# server_info PATH, BASE: which process and generation answer (race
# handler's info=1).
sub server_info {
    my ($path, $base) = @_;
    my $url = ($base // 'http://' . Apache::TestRequest::hostport())
              . "$path?info=1";
    my $res = LWP::UserAgent->new(timeout => 10, keep_alive => 0)->get($url);
    return _parse_race($res->code, $res->content);
}

# parallel_get URLS: GET every URL (a path: on the test server) at once,
# each from its own process and connection; they start together.
# Returns race handler results (see race) in the order of URLS.
sub parallel_get {
    my $host = 'http://' . Apache::TestRequest::hostport();
    my @urls = map { m{^/} ? "$host$_" : $_ } @_;
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    pipe(my $res_r, my $res_w) or die "pipe: $!";
    my @pids;
    for my $i (0 .. $#urls) {
        my $pid = fork() // die "fork: $!";
        if (!$pid) {
            close $go_w;
            close $res_r;
            my $ua = LWP::UserAgent->new(timeout => 60, keep_alive => 0);
            # wait for the start signal: the parent closes its end
            sysread($go_r, my $buf, 1);
            my $res = $ua->get($urls[$i]);
            my $body = $res->content // '';
            $body =~ s/[\r\n]+/ /g;
            $body = substr($body, 0, 1000);
            # one short line per child: atomic on a pipe
            syswrite($res_w, join("\t", $i, $res->code, $body) . "\n");
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $go_r;
    close $res_w;
    # let every child reach its read, then start them all
    select(undef, undef, undef, 0.3);
    close $go_w;
    my @out;
    while (my $line = <$res_r>) {
        chomp $line;
        my ($i, $code, $body) = split /\t/, $line, 3;
        $out[$i] = _parse_race($code, $body);
    }
    close $res_r;
    waitpid($_, 0) for @pids;
    for my $i (0 .. $#urls) {
        $out[$i] //= _parse_race(0, 'NOANSWER');
    }
    return @out;
}

# graceful PID_FILE_OR_PID, INFO_PATH, BASE: a graceful restart (SIGUSR1),
# then wait until a process of the next generation answers INFO_PATH.
# Returns (ok, generation before, generation after).
sub graceful {
    my ($pid, $info_path, $base) = @_;
    if ($pid !~ /^\d+$/) {
        my $text = slurp($pid) // '';
        ($pid) = $text =~ /(\d+)/;
        return (0, undef, undef) unless $pid;
    }
    my $before = server_info($info_path, $base)->{gen};
    return (0, undef, undef) unless defined $before;
    kill 'USR1', $pid or return (0, $before, undef);
    for (1 .. 200) {
        select(undef, undef, undef, 0.1);
        my $i = server_info($info_path, $base);
        return (1, $before, $i->{gen})
            if $i->{code} == 200 && defined $i->{gen} && $i->{gen} > $before;
    }
    return (0, $before, undef);
}

# thumbprints PEM_FILE: the certificate's MD5 as NDES shows it (four
# groups of eight), its MD5 and SHA-256 in upper-case hex, by openssl.
sub thumbprints {
    my $file = shift;
    my %fp;
    for my $md (qw(md5 sha256)) {
        my ($rc, $out) = run('openssl', 'x509', '-in', $file, '-noout',
                             '-fingerprint', "-$md");
        die "openssl x509 -fingerprint: $out" if $rc;
        my ($hex) = $out =~ /Fingerprint=([0-9A-Fa-f:]+)/;
        ($fp{$md} = uc($hex // '')) =~ s/://g;
    }
    my $grouped = join ' ', $fp{md5} =~ /(.{8})/g;
    return ($grouped, $fp{md5}, $fp{sha256});
}

# log_watch; ...; log_lines REGEX: the error_log lines written since
# log_watch, waiting up to 2 s for one that matches REGEX (a line may be
# written just after the response went out).
sub log_watch { t_start_error_log_watch() }

sub log_lines {
    my $re = shift;
    my @lines;
    for (1 .. 20) {
        push @lines, t_finish_error_log_watch();
        last if !$re || grep { /$re/ } @lines;
        select(undef, undef, undef, 0.1);
        t_start_error_log_watch();
    }
    return @lines;
}

1;
