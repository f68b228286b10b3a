package netguard_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's worker-pool janitor notices Stop only after its idle
		// sleep (10 s), so a stopped server leaves it behind briefly; the
		// Date header's refresher runs for the life of the process once a
		// server has started. Neither holds a connection; every goroutine
		// of ours must be gone.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	)
}
