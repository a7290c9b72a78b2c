/* http: libcurl wrapper (see http.h). */
#include "http.h"

#include <curl/curl.h>

int http_global_init(struct phx_err *err)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return phx_err_set(err, PHX_E_INTERNAL, "libcurl initialisation failed");
	return 0;
}

void http_global_cleanup(void)
{
	curl_global_cleanup();
}
