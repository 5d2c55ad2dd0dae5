package logging

import (
	"bytes"
	"encoding/json"
	"testing"

	"go.uber.org/zap"
)

func TestNewJSON(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(Options{Format: "json", Level: "info"}, "tool", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("Hidden")
	log.Info("Deleted pod", zap.String("namespace", "user-alice"))
	_ = log.Sync()
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &rec); err != nil {
		t.Fatalf("output %q is not one JSON record: %v", buf.String(), err)
	}
	if rec["msg"] != "Deleted pod" || rec["namespace"] != "user-alice" || rec["logger"] != "tool" || rec["level"] != "info" {
		t.Errorf("record = %v, want msg, namespace, logger and level", rec)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		o       Options
		wantErr bool
	}{
		{Options{Format: "json", Level: "debug"}, false},
		{Options{Format: "console", Level: "warn"}, false},
		{Options{Format: "auto"}, false},
		{Options{Format: "xml"}, true},
		{Options{Format: "json", Level: "loud"}, true},
	}
	for _, tt := range tests {
		if err := tt.o.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("Validate(%+v) = %v, wantErr %v", tt.o, err, tt.wantErr)
		}
	}
}
