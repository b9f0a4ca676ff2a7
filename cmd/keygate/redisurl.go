package main

import (
	"fmt"
	"strings"
)

// redisURLShape explains a KEYGATE_REDIS_URL that is not a URL at all, the
// usual mistake being a bare host:port, before the URL parser reports it in
// its own words. "" means the value is empty or has a scheme.
func redisURLShape(u string) string {
	if u == "" || strings.Contains(u, "://") {
		return ""
	}
	return fmt.Sprintf("%q is not a URL: write it as redis://%s (rediss:// for TLS)", u, strings.TrimPrefix(u, "//"))
}
