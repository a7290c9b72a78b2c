/* Unit tests for the http module's pure parts: fingerprint parsing, redaction, form encoding,
 * header lookup. The wire (TLS pinning, uploads) is covered by
 * tests/integration/test_pve_client.c against the simulator. */
#include <criterion/criterion.h>
#include <string.h>

#include "http.h"

TestSuite(http);

static const char fp_colons[] =
	"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:"
	"45:67:89";

Test(http, fingerprint_accepts_colons_and_any_case)
{
	static const char *const forms[] = {
		fp_colons,
		"abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
		"  ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:"
		"23:45:67:89\n",
	};
	char text[HTTP_FINGERPRINT_TEXT_LEN];
	size_t i;

	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		unsigned char fp[HTTP_SHA256_LEN];

		cr_assert_eq(http_fingerprint_parse(forms[i], fp, &err), 0, "form %zu: %s", i,
			     err.msg);
		cr_assert_eq(fp[0], 0xab);
		cr_assert_eq(fp[31], 0x89);
		http_fingerprint_format(fp, text);
		cr_assert_str_eq(text, fp_colons);
	}
}

Test(http, fingerprint_rejects_malformed_and_names_value)
{
	static const char *const bad[] = {
		"AB:CD",			  /* too short */
		"zz" "cdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
		"abcdef0123456789abcdef0123456789abcdef0123456789abcdef012345678900", /* 33 bytes */
		"",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		unsigned char fp[HTTP_SHA256_LEN];

		memset(fp, 0x5a, sizeof(fp));
		cr_assert_eq(http_fingerprint_parse(bad[i], fp, &err), -1, "accepted '%s'", bad[i]);
		cr_assert_eq(err.code, PHX_E_INPUT);
		cr_assert(strstr(err.msg, bad[i]), "message does not name the value: %s", err.msg);
		cr_assert_eq(fp[0], 0x5a, "output written on failure");
	}
}

static char *redact(const char *in)
{
	struct phx_err err = PHX_ERR_INIT;
	struct buf out = BUF_INIT;

	cr_assert_eq(http_redact(in, strlen(in), &out, &err), 0, "%s", err.msg);
	return buf_detach(&out);
}

Test(http, redacts_authorization_header_line)
{
	char *r = redact("POST /api2/json/x HTTP/1.1\r\nHost: h\r\n"
			 "Authorization: PVEAPIToken=a@pve!t=11111111-2222\r\nAccept: */*\r\n");

	cr_assert_null(strstr(r, "11111111"), "secret leaked: %s", r);
	cr_assert(strstr(r, "Authorization: [redacted]\r\n"), "%s", r);
	cr_assert(strstr(r, "Host: h\r\nAuthorization"), "%s", r);
	cr_assert(strstr(r, "Accept: */*"), "%s", r);
	free(r);
}

Test(http, redacts_password_form_values_only)
{
	struct {
		const char *in, *want;
	} cases[] = {
		{"vmid=100&cipassword=hunter2&name=x", "vmid=100&cipassword=[redacted]&name=x"},
		{"password=s3cret", "password=[redacted]"},
		{"a=1 cipassword=$6$abc name=y", "a=1 cipassword=[redacted] name=y"},
		{"mypassword=keep&ciuser=ubuntu", "mypassword=keep&ciuser=ubuntu"},
		{"/x?password=p&b=2", "/x?password=[redacted]&b=2"},
		{"update VM 100: -cipassword pw -name x", "update VM 100: -cipassword [redacted] -name x"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *r = redact(cases[i].in);

		cr_assert_str_eq(r, cases[i].want);
		free(r);
	}
}

Test(http, form_append_uses_curl_escaping)
{
	struct phx_err err = PHX_ERR_INIT;
	struct buf b = BUF_INIT;

	cr_assert_eq(http_form_append(&b, "a b", "x&y=z/\xc3\xa9", &err), 0);
	cr_assert_eq(http_form_append(&b, "sshkeys", "ssh-ed25519 AAA+/= c@d", &err), 0);
	cr_assert_str_eq(buf_str(&b),
			 "a%20b=x%26y%3Dz%2F%C3%A9&sshkeys=ssh-ed25519%20AAA%2B%2F%3D%20c%40d");
	buf_release(&b);
}

Test(http, escape_keeps_unreserved)
{
	struct phx_err err = PHX_ERR_INIT;
	char *e = http_escape("UPID:pve1:0012ABCD:a@pve!ci:-._~", &err);

	cr_assert_str_eq(e, "UPID%3Apve1%3A0012ABCD%3Aa%40pve%21ci%3A-._~");
	free(e);
}

Test(http, response_header_lookup_is_case_insensitive)
{
	struct http_response r;
	char v[64];

	http_response_init(&r);
	cr_assert_eq(buf_puts(&r.headers, "Content-Type: application/json\r\n"
					  "X-Thing:   spaced value  \r\n\r\n", NULL), 0);
	cr_assert(http_response_header(&r, "content-type", v, sizeof(v)));
	cr_assert_str_eq(v, "application/json");
	cr_assert(http_response_header(&r, "x-thing", v, sizeof(v)));
	cr_assert_str_eq(v, "spaced value");
	cr_assert(http_response_header(&r, "X-THING", v, 4));
	cr_assert_str_eq(v, "spa");
	cr_assert_not(http_response_header(&r, "Content", v, sizeof(v)));
	http_response_release(&r);
}

Test(http, client_rejects_bad_pin_at_construction)
{
	struct phx_err err = PHX_ERR_INIT;
	struct http_client_opts o = {.tls = {.fingerprint = "12:34"}};

	cr_assert_null(http_client_new(&o, &err));
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "'12:34'"), "%s", err.msg);
}

Test(http, connection_refused_is_a_net_error_naming_the_origin)
{
	struct phx_err err = PHX_ERR_INIT;
	struct http_client_opts o = {.connect_timeout_s = 2};
	struct http_client *c;
	struct http_response r;
	struct http_request req = {.method = "GET", .url = "http://127.0.0.1:1/api2/json/version"};

	cr_assert_eq(http_global_init(&err), 0);
	c = http_client_new(&o, &err);
	cr_assert_not_null(c, "%s", err.msg);
	http_response_init(&r);
	cr_assert_eq(http_perform(c, &req, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_NET);
	cr_assert(strstr(err.msg, "http://127.0.0.1:1"), "%s", err.msg);
	cr_assert_null(strstr(err.msg, "/version"), "path leaked into message: %s", err.msg);
	cr_assert_eq(r.status, 0);
	http_response_release(&r);
	http_client_free(c);
	http_global_cleanup();
}

Test(http, redacts_password_members_of_json_bodies)
{
	char *r = redact("{\"vmid\":1,\"cipassword\":\"a\\\"b\",\"password\":\"x\",\"ciuser\":\"u\"}");

	cr_assert_str_eq(r, "{\"vmid\":1,\"cipassword\":\"[redacted]\",\"password\":\"[redacted]\","
			    "\"ciuser\":\"u\"}");
	free(r);
}
