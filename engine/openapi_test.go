package engine

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestOpenAPI_CoversRoutes walks the router's table and the document: it
// names every route and method the document lacks, and every operation of
// the document the router does not serve.
func TestOpenAPI_CoversRoutes(t *testing.T) {
	raw, err := buildOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	var covered []string
	for _, ep := range routes {
		for _, h := range ep.handlers {
			key := h.method + " " + ep.path
			served[key] = true
			if _, ok := doc.Paths[ep.path][strings.ToLower(h.method)]; !ok {
				t.Errorf("route %s (%s) is missing from openapi.json: add it to operations in openapi.go", key, ep.route)
				continue
			}
			covered = append(covered, key)
		}
	}
	for _, op := range facadeOperations {
		served["POST "+op.path] = true
	}
	for path, item := range doc.Paths {
		for method := range item {
			if key := strings.ToUpper(method) + " " + path; !served[key] {
				t.Errorf("openapi.json documents %s, which the router does not serve", key)
			}
		}
	}
	sort.Strings(covered)
	t.Logf("openapi.json covers %d operations on %d paths:\n  %s", len(covered), len(doc.Paths), strings.Join(covered, "\n  "))
}

// TestOpenAPI_ErrorCodes checks that every error code constant in
// errors.go has its HTTP status and that each one the handlers can answer
// with is documented on some operation.
func TestOpenAPI_ErrorCodes(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for i := range operations {
		for _, c := range operations[i].codesFor() {
			documented[c] = true
			if _, ok := errorStatus[c]; !ok {
				t.Errorf("%s %s: code %q has no status in errorStatus", operations[i].method, operations[i].path, c)
			}
		}
	}
	// Codes no single operation lists: 404 and 405 hold for every path
	// (the document's description says so), and no handler answers 415 yet.
	general := map[string]bool{codeNotFound: true, codeMethodNotAllowed: true, codeUnsupportedContent: true}
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		spec, ok := node.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range spec.Names {
			if !strings.HasPrefix(name.Name, "code") || i >= len(spec.Values) {
				continue
			}
			lit, ok := spec.Values[i].(*ast.BasicLit)
			if !ok {
				continue
			}
			code, _ := strconv.Unquote(lit.Value)
			n++
			if _, ok := errorStatus[code]; !ok {
				t.Errorf("%s (%q) has no status in errorStatus (openapi.go)", name.Name, code)
			}
			if !documented[code] && !general[code] {
				t.Errorf("%s (%q) is on no operation of openapi.go", name.Name, code)
			}
		}
		return true
	})
	if n < 30 {
		t.Fatalf("found %d code constants in errors.go; the parse is broken", n)
	}
}

// TestOpenAPI_CoversFacades checks the drop-in APIs' part of the document:
// every documented path is one serveFacade answers (by the façade it is
// documented under), and every façade has its paths documented.
func TestOpenAPI_CoversFacades(t *testing.T) {
	documented := map[int]int{}
	for _, op := range facadeOperations {
		path := strings.NewReplacer("{app}", "1400000001", "{api_key}", "k").Replace(op.path)
		if got := facadeOf(path); got != op.facade {
			t.Errorf("%s is documented under %s, but serveFacade gives it to %d", op.path, facadeTag(op.facade), got)
		}
		documented[op.facade]++
	}
	for _, f := range []int{facadeGorush, facadeMatrix, facadeTencent} {
		if documented[f] == 0 {
			t.Errorf("no %s path in facadeOperations", facadeTag(f))
		}
	}
	// herald's own paths stay herald's.
	for _, ep := range routes {
		if f := facadeOf(ep.path); f != facadeNone {
			t.Errorf("route %s is taken by the %s façade", ep.path, facadeTag(f))
		}
	}
}
