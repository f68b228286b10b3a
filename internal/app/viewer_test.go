package app_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/app"
)

// TestViewerFlag checks -viewer and DISPATCHER_VIEWER through the running
// service: GET / is the viewer page unless turned off.
func TestViewerFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want int
	}{
		{name: "on by default", want: http.StatusOK},
		{name: "flag off", args: []string{"-viewer=false"}, want: http.StatusNotFound},
		{name: "env off", env: map[string]string{"DISPATCHER_VIEWER": "false"}, want: http.StatusNotFound},
		{name: "flag wins over env", args: []string{"-viewer=true"}, env: map[string]string{"DISPATCHER_VIEWER": "false"}, want: http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"-port", "127.0.0.1:0", "-log-format", "json"}, tc.args...)
			addr, stop, _ := runApp(t, args, func(k string) string { return tc.env[k] })
			defer func() { _ = stop() }()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Get("http://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("GET /: %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func TestViewerFlagRefusesABadValue(t *testing.T) {
	t.Parallel()
	getenv := func(k string) string {
		if k == "DISPATCHER_VIEWER" {
			return "perhaps"
		}
		return ""
	}
	err := app.Run(context.Background(), nil, getenv, io.Discard, io.Discard)
	if !errors.Is(err, app.ErrUsage) || !strings.Contains(err.Error(), "DISPATCHER_VIEWER") {
		t.Errorf("Run with DISPATCHER_VIEWER=perhaps: %v, want a usage error naming it", err)
	}
}
