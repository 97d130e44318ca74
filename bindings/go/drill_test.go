package breakglass

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The drill against the local servers, as the Python drill tests do: a receiver that answers
// 2xx is delivered, one that answers 500 is refused, and the report says which.
func TestDrillReportsEachChannel(t *testing.T) {
	fresh(t)
	s := startServers(t, "ok", "ok")
	set(t, "alert_webhook_url", s.hookURL(), "delivery_timeout_ms", "2000")
	report, err := Drill(20 * time.Second)
	if err != nil {
		t.Fatalf("Drill: %v (report %+v)", err, report)
	}
	if len(report) != 1 || report[0].Outcome != DrillDelivered || report[0].Detail != "" ||
		!strings.HasPrefix(report[0].Channel, "webhook json http://127.0.0.1:") {
		t.Errorf("report %+v", report)
	}
	_, reqs := s.wait(t, 0, 1, 5*time.Second)
	if len(reqs) != 1 || !strings.Contains(reqs[0].Body, "break_glass_drill") {
		t.Errorf("the receiver got %+v", reqs)
	}
}

func TestDrillFailsWhenAChannelRefuses(t *testing.T) {
	fresh(t)
	s := startServers(t, "ok", "status:400")
	set(t, "alert_webhook_url", s.hookURL(), "delivery_timeout_ms", "2000")
	report, err := Drill(20 * time.Second)
	wantIs(t, "Drill", err, ErrDrillFailed)
	if len(report) != 1 || report[0].Outcome != DrillRefused || !strings.Contains(report[0].Detail, "400") {
		t.Errorf("report %+v", report)
	}
}

func TestDrillWithoutChannelsIsNotConfigured(t *testing.T) {
	fresh(t)
	report, err := Drill(time.Second)
	if !errors.Is(err, ErrNotConfigured) || len(report) != 0 {
		t.Errorf("Drill: %v, %+v", err, report)
	}
}
