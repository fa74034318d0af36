package engine

import (
	"slices"
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
		{"a/groups/g/members/u", []string{"a", "groups", "g", "members", "u"}, true},
		{"a/groups/g/members/u/x", nil, false},
		{"a/b/c/d/e/", []string{"a", "b", "c", "d", "e"}, true},
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
		{[]string{"a", "messages"}, routeMessages, "", "", "", "POST"},
		{[]string{"a", "messages:batch"}, routeMessageBatch, "", "", "", "POST"},
		{[]string{"a", "messages", "42"}, routeMessage, "", "", "42", "GET"},
		{[]string{"a", "users", "u", "apns"}, routeAPNS, "u", "", "", "PUT"},
		{[]string{"a", "groups", "g", "members", "u"}, routeMember, "u", "g", "", "PUT or DELETE"},
		{[]string{"a", "certificates"}, routeCerts, "", "", "", "POST or GET"},
		{[]string{"a", "users", "u", "devices"}, "", "", "", "", ""},
		{[]string{"a", "nothing"}, "", "", "", "", ""},
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
