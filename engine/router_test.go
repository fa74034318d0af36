package engine

import (
	"slices"
	"strings"
	"testing"
)

func TestSplitPath(t *testing.T) {
	tests := []struct {
		path string
		want []string
		ok   bool
	}{
		{"app", []string{"app"}, true},
		{"app/messages", []string{"app", "messages"}, true},
		{"app/messages/", []string{"app", "messages"}, true},
		{"app//messages", []string{"app", "", "messages"}, true},
		{"", []string{""}, true},
		{"v1/apps/a/groups/g/members/u", []string{"v1", "apps", "a", "groups", "g", "members", "u"}, true},
		{"a/b/c/d/e/f/g/h", []string{"a", "b", "c", "d", "e", "f", "g", "h"}, true},
		{"a/b/c/d/e/f/g/h/i", nil, false},
		{"a/b/c/d/e/f/g/h/", []string{"a", "b", "c", "d", "e", "f", "g", "h"}, true},
	}
	for _, tt := range tests {
		var buf [maxSegments]string
		got, ok := splitPath(tt.path, buf[:0])
		if ok != tt.ok || (ok && !slices.Equal(got, tt.want)) {
			t.Errorf("splitPath(%q) = %q, %v; want %q, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		seg             []string
		route           string
		user, group, id string
		methods         string
	}{
		{[]string{"v1", "apps", "a", "messages"}, routeMessages, "", "", "", "POST"},
		{[]string{"v1", "apps", "a", "messages:batch"}, routeMessageBatch, "", "", "", "POST"},
		{[]string{"v1", "apps", "a", "messages", "42"}, routeMessage, "", "", "42", "GET"},
		{[]string{"v1", "apps", "a", "users", "u", "apns"}, routeAPNS, "u", "", "", "PUT"},
		{[]string{"v1", "apps", "a", "users", "apns"}, routeUser, "apns", "", "", "GET"},
		{[]string{"v1", "apps", "a", "groups", "g", "members", "u"}, routeMember, "u", "g", "", "PUT or DELETE"},
		{[]string{"v1", "apps", "a", "certificates"}, routeCerts, "", "", "", "POST or GET"},
		{[]string{"v1", "apps", "a", "certificates", "7"}, routeCert, "", "", "7", "DELETE"},
		{[]string{"v1", "apps", "a", "stats"}, routeAppStats, "", "", "", "GET"},
		{[]string{"v1", "apps"}, routeApps, "", "", "", "POST or GET"},
		{[]string{"v1", "stats"}, routeStats, "", "", "", "GET"},
		{[]string{"healthz"}, routeHealth, "", "", "", "GET"},
		{[]string{"console"}, routeConsole, "", "", "", "GET"},
		{[]string{"console", "app.js"}, routeConsole, "", "", "app.js", "GET"},
		{[]string{"v1", "apps", "a", "users", "", "apns"}, routeAPNS, "", "", "", "PUT"},
		{[]string{"v1", "apps", "a", "users", "u", "devices"}, "", "", "", "", ""},
		{[]string{"v1", "apps", "a", "nothing"}, "", "", "", "", ""},
		{[]string{"v1", "apps", "a"}, "", "", "", "", ""},
		{[]string{"v2", "apps", "a", "messages"}, "", "", "", "", ""},
	}
	for _, tt := range tests {
		r := &request{}
		ep := match(r, tt.seg)
		if tt.route == "" {
			if ep != nil {
				t.Errorf("match(%q) = %s; want none", tt.seg, ep.route)
			}
			continue
		}
		if ep == nil {
			t.Errorf("match(%q) = none; want %s", tt.seg, tt.route)
			continue
		}
		if ep.route != tt.route || r.user != tt.user || r.group != tt.group || r.id != tt.id || ep.allowed() != tt.methods {
			t.Errorf("match(%q) = %s user %q group %q id %q methods %q; want %s %q %q %q %q",
				tt.seg, ep.route, r.user, r.group, r.id, ep.allowed(), tt.route, tt.user, tt.group, tt.id, tt.methods)
		}
	}
}

// TestRoutes_Table checks the router's table: templates fit maxSegments,
// have no empty segment, name only parameters the router binds, and no
// two templates match the same path.
func TestRoutes_Table(t *testing.T) {
	known := map[string]bool{"{app}": true, "{user}": true, "{group}": true, "{business_id}": true, "{message_id}": true, "{conversation}": true, "{file}": true}
	for _, ep := range routes {
		if len(ep.seg) > maxSegments {
			t.Errorf("%s: %d segments; maxSegments is %d", ep.path, len(ep.seg), maxSegments)
		}
		for _, s := range ep.seg {
			if s == "" {
				t.Errorf("%s: empty segment", ep.path)
			} else if s[0] == '{' && !known[s] {
				t.Errorf("%s: parameter %s is not one match binds", ep.path, s)
			}
		}
		if (ep.scope == scopeApp) != (len(ep.seg) > 2 && ep.seg[2] == "{app}") {
			t.Errorf("%s: scope %d; app routes (and only they) have {app}", ep.path, ep.scope)
		}
		// Instantiate the template and check that it matches itself and
		// nothing earlier in the table.
		seg := slices.Clone(ep.seg)
		for i, s := range seg {
			if s[0] == '{' {
				seg[i] = "x" + strings.Trim(s, "{}")
			}
		}
		if got := match(&request{}, seg); got != ep {
			other := "nothing"
			if got != nil {
				other = got.path
			}
			t.Errorf("%s: its instance %q matches %s", ep.path, seg, other)
		}
	}
}
