# herald — make targets. `make run` and `make test` are the two commands a
# newcomer needs; everything installs from go.mod.
GO       ?= go
BIN      := bin/herald
PKGS     := ./...
FUZZTIME ?= 30s

.PHONY: all build run test test-short bench demo fuzz vet fmt clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/herald

# herald serve on the embedded default: Pebble in ./data, 127.0.0.1:8080.
run: build
	./$(BIN) serve

# Unit, end-to-end and fuzz-seed tests with the race detector.
test: vet
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-short:
	$(GO) test -count=1 -short $(PKGS)

vet:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Micro-benchmarks of the hot paths, then an end-to-end herald bench run.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	./$(BIN) bench

demo: build
	./$(BIN) demo

# Run every fuzz target for FUZZTIME each (CI runs only their seed corpora,
# as part of make test).
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
