package controllers

import (
	"net/url"
	"strings"
)

// redactDSN removes the DSN's password from a message, in case a driver error quotes the DSN.
func redactDSN(msg, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return msg
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return msg
}
