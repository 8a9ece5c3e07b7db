package ui

import "strings"

// device names a session's user agent for people ("Firefox on macOS"): a few well-known
// tokens, in the order browsers stack them (Edge and Opera say Chrome, Chrome says Safari).
func device(ua string) string {
	pick := func(table [][2]string) string {
		for _, kv := range table {
			if strings.Contains(ua, kv[0]) {
				return kv[1]
			}
		}
		return ""
	}
	browser := pick([][2]string{{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
		{"CriOS/", "Chrome"}, {"Chrome/", "Chrome"}, {"Version/", "Safari"}, {"curl/", "curl"}})
	os := pick([][2]string{{"Windows", "Windows"}, {"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"},
		{"CrOS", "ChromeOS"}, {"Mac OS X", "macOS"}, {"Linux", "Linux"}})
	switch {
	case browser != "" && os != "":
		return browser + " on " + os
	case browser != "":
		return browser
	case os != "":
		return os
	}
	return "Unknown device"
}
