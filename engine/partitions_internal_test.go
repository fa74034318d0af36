package engine

import "testing"

func TestUserOfPath(t *testing.T) {
	for _, c := range []struct {
		path, app, user string
		ok              bool
	}{
		{"/v1/apps/a1/users/u1", "a1", "u1", true},
		{"/v1/apps/a1/users/u1/apns", "a1", "u1", true},
		{"/v1/apps/a1/users/u%2F1/presence?x=1", "a1", "u/1", true},
		{"/v1/apps/a%201/users/u1/profile", "a 1", "u1", true},
		{"/v1/apps/a1/users/u1/conversations/c2c_bob", "a1", "u1", true},
		{"/v1/apps/a1/users/u1/nope", "", "", false},
		{"/v1/apps/a1/groups/g/members/u1", "", "", false}, // a roster write, any node
		{"/v1/apps/a1/messages", "", "", false},
		{"/v1/apps/a1/users/u%zz", "", "", false},
		{"/healthz", "", "", false},
	} {
		app, user, ok := UserOfPath(c.path)
		if app != c.app || user != c.user || ok != c.ok {
			t.Errorf("UserOfPath(%q) = %q, %q, %v; want %q, %q, %v", c.path, app, user, ok, c.app, c.user, c.ok)
		}
	}
}
