"""Each text rule: what it must catch (and the marker it leaves) and what it must leave alone."""

from __future__ import annotations

import pytest

from errwire._privacy import Scrubber

SCRUB = Scrubber()


def scrub(text: str) -> str:
    return SCRUB.scrub_text(text)


def assert_caught(text: str, secret: str, marker: str, *, keep: tuple[str, ...] = ()) -> None:
    out = scrub(text)
    assert secret not in out, out
    assert marker in out, out
    for harmless in keep:
        assert harmless in out, out


def assert_untouched(text: str) -> None:
    assert scrub(text) == text


# ---------------------------------------------------------------- emails


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("contact alice@example.com today", "alice@example.com"),
        ("<bob.smith+tag@mail.example.co.uk>", "bob.smith+tag@mail.example.co.uk"),
        ("mailto:carol@example.org.", "carol@example.org"),
        ("user=dave_99@sub.example.io,", "dave_99@sub.example.io"),
        ("/users/erin%40example.com/profile", "erin%40example.com"),
        ("ops@[10.0.0.1] wrote", "ops@[10.0.0.1]"),
        ("EVE@EXAMPLE.COM", "EVE@EXAMPLE.COM"),
    ],
)
def test_emails_are_caught(text: str, secret: str) -> None:
    assert_caught(text, secret, "[EMAIL]")


@pytest.mark.parametrize(
    "text",
    [
        "@app.route('/x') decorator",
        "see icon@2x.png and logo@3x.jpg",
        "root@localhost is local",
        "price @ 5 each",
        "user @ example dot com",
        "handle @alice on chat",
    ],
)
def test_non_emails_are_left_alone(text: str) -> None:
    assert_untouched(text)


def test_email_keeps_surrounding_text() -> None:
    assert (
        scrub("Failed to notify alice@example.com: timeout") == "Failed to notify [EMAIL]: timeout"
    )


# ---------------------------------------------------------------- IP addresses and versions


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connect to 10.0.0.5 failed", "10.0.0.5"),
        ("from 203.0.113.77:443", "203.0.113.77"),
        ("client=192.168.1.20,", "192.168.1.20"),
        ("host 8.8.8.8.", "8.8.8.8"),
        ("route 10.0.0.0/8", "10.0.0.0"),
        ("peer 2001:db8:85a3::8a2e:370:7334 down", "2001:db8:85a3::8a2e:370:7334"),
        ("link fe80::1%eth0 up", "fe80::1%eth0"),
        ("mapped ::ffff:10.1.2.3 ok", "::ffff:10.1.2.3"),
        (
            "full 2001:0db8:0000:0000:0000:ff00:0042:8329 ok",
            "2001:0db8:0000:0000:0000:ff00:0042:8329",
        ),
        ("bracketed [2001:db8::1]:443", "2001:db8::1"),
    ],
)
def test_ip_addresses_are_caught(text: str, secret: str) -> None:
    assert_caught(text, secret, "[IP]")


@pytest.mark.parametrize(
    "text",
    [
        "at 12:30:45 the job ran",
        "timestamp 2024-01-15T12:30:45.123Z",
        "released v1.2.3.4 today",
        "running version 1.2.3.4",
        "Version: 10.0.19041.1",
        "firmware 2.4.1.0 installed",
        "pip install pkg==1.2.3.4",
        "Mozilla/5.0 AppleWebKit/537.36 Chrome/120.0.0.0 Safari/537.36",
        "build 1.2.3.4-beta1 ok",
        "a dotted 1.2.3.4.5 sequence",
        "archive pkg-1.2.3.4.tar.gz",
        "octets 300.1.2.3 are not an address",
        "leading zeros 01.02.03.04 are dates",
        "slice x[1::2] and y[::3]",
        "C++ std::vector and Foo::Bar",
        "ratio 3:2 and 16:9",
        "dead::beef",
    ],
)
def test_times_versions_and_code_are_not_ips(text: str) -> None:
    assert_untouched(text)


# ---------------------------------------------------------------- MAC


@pytest.mark.parametrize("secret", ["00:1a:2b:3c:4d:5e", "00-1A-2B-3C-4D-5E", "001a.2b3c.4d5e"])
def test_mac_addresses_are_caught(secret: str) -> None:
    assert_caught(f"iface {secret} up", secret, "[MAC]", keep=("iface", "up"))


@pytest.mark.parametrize("text", ["1234.5678.9012 is a number", "12:30:45 and 10:20", "a1:b2:c3"])
def test_mac_lookalikes_are_left_alone(text: str) -> None:
    assert_untouched(text)


# ---------------------------------------------------------------- key = value secrets


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        ("password=hunter2", "hunter2", "password=[REDACTED]"),
        ("db_password = 's3cr3t pass'", "s3cr3t", "db_password = '[REDACTED]'"),
        (
            '{"api_key": "abc123", "user": "bob"}',
            "abc123",
            '{"api_key": "[REDACTED]", "user": "bob"}',
        ),
        ("{'secret': 'xyz', 'n': 1}", "xyz", "{'secret': '[REDACTED]', 'n': 1}"),
        ("X-Api-Key: k3y-value", "k3y-value", "X-Api-Key: [REDACTED]"),
        ("Authorization: Bearer abc", "abc", "Authorization: Bearer [REDACTED]"),
        ("Cookie: sessionid=abc; csrftoken=def", "sessionid=abc", "Cookie: [REDACTED]"),
        ("Set-Cookie: sid=abc; Path=/; HttpOnly", "sid=abc", "Set-Cookie: [REDACTED]"),
        ("login?user=bob&passwd=pw1&next=/", "pw1", "login?user=bob&passwd=[REDACTED]&next=/"),
        ("PWD=pw1 ok", "pw1", "PWD=[REDACTED] ok"),
        ("accessKey: AbC123xyz", "AbC123xyz", "accessKey: [REDACTED]"),
        ("private_key=-----x", "-----x", "private_key=[REDACTED]"),
        ("auth=tok_9, next", "tok_9", "auth=[REDACTED], next"),
        ("sessionId:'q1w2'", "q1w2", "sessionId:'[REDACTED]'"),
        ("csrf_token => 'v4lue'", "v4lue", "csrf_token => '[REDACTED]'"),
        (
            "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCY",
            "wJalrXUtnFEMI",
            "aws_secret_access_key=[REDACTED]",
        ),
        ("signature=ab12cd.", "ab12cd", "signature=[REDACTED]."),
        ("client.credential := x9", "x9", "client.credential := [REDACTED]"),
        ('"tokens": ["t1", "t2"]', "t1", '"tokens": [REDACTED]'),
        ("run --password hunter2 --verbose", "hunter2", "run --password [REDACTED] --verbose"),
        ("run --api-key=k9 -v", "k9", "run --api-key=[REDACTED] -v"),
        ("password: admin", "admin", "password: [REDACTED]"),
        (
            "Credentials(password='s3cret!', user='bob')",
            "s3cret",
            "Credentials(password='[REDACTED]', user='bob')",
        ),
        ("token=YWJjZGVm==", "YWJjZGVm", "token=[REDACTED]"),
        ('"pin": 1234,', "1234", '"pin": [REDACTED],'),
    ],
)
def test_secret_values_are_redacted_and_keys_kept(text: str, secret: str, expected: str) -> None:
    out = scrub(text)
    assert secret not in out
    assert out == expected


@pytest.mark.parametrize(
    "text",
    [
        "author=Bob",
        "authority: example.com",
        "token bucket size 10",
        "Invalid token: expired",
        "session: started",
        "max_tokens=100 and token_count=3",
        "token_type=bearer",
        "password_length=12",
        "session_cookie_age=1209600",
        "password=",
        "password=null and token: None",
        "if token == expected",
        "token != other",
        "key=value and cache_key=user:1",
        "keyboard: us",
        "tokenizer=bert",
        "passport=ok",
        'json {"user": "bob", "nested": {"a": 1}}',
    ],
)
def test_ordinary_keys_and_prose_are_left_alone(text: str) -> None:
    assert_untouched(text)


def test_nested_json_redacts_inner_secret_keys() -> None:
    assert (
        scrub('{"auth": {"user": "bob", "password": "pw"}}')
        == '{"auth": {"user": "bob", "password": "[REDACTED]"}}'
    )


def test_header_line_redacts_the_whole_line_value() -> None:
    text = "GET / HTTP/1.1\nX-Auth-Token: abc def ghi\nAccept: */*"
    assert scrub(text) == "GET / HTTP/1.1\nX-Auth-Token: [REDACTED]\nAccept: */*"


# ---------------------------------------------------------------- credentials by shape


@pytest.mark.parametrize(
    ("text", "secret", "marker"),
    [
        ("curl -H 'Bearer abcDEF123456'", "abcDEF123456", "Bearer [TOKEN]"),
        ("sent Basic dXNlcjpwYXNzd29yZA== to", "dXNlcjpwYXNzd29yZA==", "Basic [TOKEN]"),
        ("Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "9944b091", "Token [TOKEN]"),
        ("bearer ya_Really_L0ng", "ya_Really_L0ng", "bearer [TOKEN]"),
        ('Digest username="bob", realm="x"', 'username="bob"', "Digest [TOKEN]"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_ABC-123 used",
            "eyJhbGciOiJIUzI1NiJ9",
            "[JWT]",
        ),
        ("alg none eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. done", "eyJhbGciOiJub25lIn0", "[JWT]"),
        ("aws AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE", "[AWS-KEY]"),
        ("aws ASIAY34FZKBOKMUTVV7A here", "ASIAY34FZKBOKMUTVV7A", "[AWS-KEY]"),
        ("gh ghp_0123456789abcdefghijABCDEFGHIJ012345 x", "ghp_0123456789", "[GITHUB-TOKEN]"),
        (
            "gh github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz x",
            "github_pat_11ABC",
            "[GITHUB-TOKEN]",
        ),
        ("slack xoxb-123456789012-abcdefABCDEF x", "xoxb-123456789012", "[SLACK-TOKEN]"),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc x", "sk_live_4eC39", "[STRIPE-KEY]"),
        ("stripe rk_test_4eC39HqLyjWDarjtT1zdp7dc x", "rk_test_4eC39", "[STRIPE-KEY]"),
        ("google AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW x", "AIzaSyA1b2", "[GOOGLE-KEY]"),
        ("openai sk-proj-Abc123Def456Ghi789Jkl012 x", "sk-proj-Abc123", "[TOKEN]"),
        ("gitlab glpat-Abc123Def456Ghi789Jk x", "glpat-Abc123", "[TOKEN]"),
        (
            "hash $2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW x",
            "R9h/cIPz0gi",
            "[TOKEN]",
        ),
        ("key is Zk39aBqR7tLmN2pX done", "Zk39aBqR7tLmN2pX", "[TOKEN]"),
        ("blob Zk39aBqR7tLmN2pXw8Yc4Tq9sV1 in text", "Zk39aBqR7tLmN2pXw8Yc4Tq9sV1", "[TOKEN]"),
    ],
)
def test_credentials_are_caught(text: str, secret: str, marker: str) -> None:
    assert_caught(text, secret, marker)


def test_private_key_blocks_are_removed_whole() -> None:
    pem = (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1b2c3\nd4e5==\n"
        "-----END RSA PRIVATE KEY-----"
    )
    assert scrub(f"loaded {pem} from disk") == "loaded [PRIVATE-KEY] from disk"
    escaped = pem.replace("\n", "\\n")
    assert scrub(f"'{escaped}'") == "'[PRIVATE-KEY]'"
    openssh = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n-----END OPENSSH PRIVATE KEY-----"
    )
    assert scrub(openssh) == "[PRIVATE-KEY]"


def test_truncated_private_key_block_is_removed_to_the_end_of_its_body() -> None:
    out = scrub("key: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nMIIE")
    assert "MIIE" not in out
    assert out.endswith("[PRIVATE-KEY]")


@pytest.mark.parametrize(
    "text",
    [
        "Token validation failed",
        "Basic authentication required",
        "bearer token missing",
        "use sklearn not sk-learn-compatible-estimators-here",
        "-----BEGIN CERTIFICATE-----",
        "commit 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b is fine",
        "uuid 550e8400-e29b-41d4-a716-446655440000 is an id",
        "CamelCaseIdentifierName2 and django_rest_framework3",
        "site-packages/django/core/handlers/exception.py",
        "sha256WithRSAEncryption X509CertificateError",
    ],
)
def test_credential_lookalikes_are_left_alone(text: str) -> None:
    assert_untouched(text)


# ---------------------------------------------------------------- cards, IBANs, phones


@pytest.mark.parametrize(
    "secret",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5500 0000 0000 0004",
        "3782 822463 10005",
        "6011000990139424",
        "2223003122003222",
    ],
)
def test_card_numbers_are_caught(secret: str) -> None:
    assert_caught(f"card {secret} declined", secret, "[CARD]", keep=("card ", " declined"))


def test_card_inside_a_longer_run_of_groups_is_caught() -> None:
    assert scrub("ref 12 4111 1111 1111 1111") == "ref 12 [CARD]"


@pytest.mark.parametrize(
    "text",
    [
        "order 4111111111111112 failed",  # Luhn-invalid
        "ts 1700000000000 ms",  # first digit not a card network's
        "id 1234567890123456",
        "amount 4111 1111",
        "4111 111 1111 1111 (odd grouping)",
    ],
)
def test_card_lookalikes_are_left_alone(text: str) -> None:
    assert_untouched(text)


@pytest.mark.parametrize(
    "secret",
    [
        "DE89 3704 0044 0532 0130 00",
        "DE89370400440532013000",
        "GB82 WEST 1234 5698 7654 32",
        "FR1420041010050500013M02606",
    ],
)
def test_ibans_are_caught(secret: str) -> None:
    assert_caught(f"pay to {secret}.", secret, "[IBAN]", keep=("pay to ",))


@pytest.mark.parametrize(
    "text", ["DE00 1234 5678 9012 3456 78", "SKU AB12CDEF3456GHIJ", "GB00 TEST"]
)
def test_iban_lookalikes_are_left_alone(text: str) -> None:
    assert_untouched(text)


@pytest.mark.parametrize(
    "secret",
    [
        "+1 (555) 123-4567",
        "+1-555-123-4567",
        "+44 20 7946 0958",
        "+44 (0)20 7946 0958",
        "+33 6 12 34 56 78",
        "+4915112345678",
        "(555) 123-4567",
        "555-123-4567",
        "555.123.4567",
        "1-555-123-4567",
        "020 7946 0958",
        "06 12 34 56 78",
        "0151 12345678",
    ],
)
def test_phone_numbers_are_caught(secret: str) -> None:
    assert_caught(f"call {secret} now", secret, "[PHONE]", keep=("call ", " now"))


@pytest.mark.parametrize(
    "text",
    [
        "on 2024-01-15 at 12:30:45",
        "dated 01.02.2024",
        "port 8080 and pid 12345",
        "count 5551234567",
        "range 100-200",
        "ISBN 978-3-16-148410-0",
        "total 1,234,567",
        "score +3 -2",
        "555-1234",
    ],
)
def test_phone_lookalikes_are_left_alone(text: str) -> None:
    assert_untouched(text)


# ---------------------------------------------------------------- coordinates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lat=51.5074, lon=-0.1278", "lat=[GEO], lon=[GEO]"),
        ('{"latitude": 48.8566, "longitude": 2.3522}', '{"latitude": [GEO], "longitude": [GEO]}'),
        ('"lat": "51.5074"', '"lat": "[GEO]"'),
        ("user_lng: 13.405", "user_lng: [GEO]"),
        ("latlng=51.5074,-0.1278 ok", "latlng=[GEO] ok"),
        ("coords: (51.5074, -0.1278)", "coords: ([GEO])"),
        ("geo:37.786971,-122.399677", "geo:[GEO]"),
    ],
)
def test_marked_coordinates_are_redacted(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "point (51.5074, -0.1278)",
        "scale=51.5074",
        "lat=999.5",
        "template=1.5",
        "long=yes",
        "ratio 0.5,0.25",
    ],
)
def test_unmarked_numbers_are_not_coordinates(text: str) -> None:
    assert_untouched(text)


# ---------------------------------------------------------------- home directories


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/home/alice/proj/app.py", "~/proj/app.py"),
        ('File "/Users/bob/src/x.py", line 3', 'File "~/src/x.py", line 3'),
        ("/var/home/carol/.venv/lib", "~/.venv/lib"),
        ("C:\\Users\\Dave\\proj\\x.py", "~\\proj\\x.py"),
        ("C:\\\\Users\\\\Dave\\\\proj", "~\\\\proj"),
        ("C:/Users/Erin Smith/proj/x.py", "~/proj/x.py"),
        ("/mnt/c/Users/frank/x", "~/x"),
        ("file:///home/gina/notes.txt", "file://~/notes.txt"),
        ("cwd=/home/hank", "cwd=~"),
    ],
)
def test_home_directories_are_replaced(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "/srv/app/home/views.py",
        "/opt/Users/list",
        "/homebrew/bin",
        "/root/app.py",
        "https://example.com/home/page",
    ],
)
def test_other_paths_are_left_alone(text: str) -> None:
    assert_untouched(text)


# ---------------------------------------------------------------- harmless text


@pytest.mark.parametrize(
    "text",
    [
        "ValueError: invalid literal for int() with base 10: 'abc'",
        "KeyError: 'user_id'",
        'Traceback (most recent call last):\n  File "app/views.py", line 42, in get',
        "Connection refused after 3 retries (timeout=5.0s)",
        "SELECT * FROM users WHERE id = %s LIMIT 10",
        "processed 1,024 items in 0.35 s; 12 errors",
        "[2024-01-15 12:30:45,123] ERROR django.request: Internal Server Error: /api/items/",
        "expected str, got NoneType",
    ],
)
def test_ordinary_error_messages_survive_unchanged(text: str) -> None:
    assert_untouched(text)
