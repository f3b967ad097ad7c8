// Non-variadic wrappers around libcurl's variadic calls (Swift cannot call C variadics).
#pragma once
#include <curl/curl.h>

typedef size_t (*sbk_curl_data_fn)(char *ptr, size_t size, size_t nmemb, void *userdata);

void sbk_curl_global_init(void);
CURLcode sbk_curl_set_long(CURL *h, CURLoption o, long v);
CURLcode sbk_curl_set_off(CURL *h, CURLoption o, curl_off_t v);
CURLcode sbk_curl_set_ptr(CURL *h, CURLoption o, void *v);
CURLcode sbk_curl_set_str(CURL *h, CURLoption o, const char *v);
CURLcode sbk_curl_set_fn(CURL *h, CURLoption o, sbk_curl_data_fn fn);
long sbk_curl_status(CURL *h);
