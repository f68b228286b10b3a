package netguard_test

import (
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.VerifyTestMain(m)
}
