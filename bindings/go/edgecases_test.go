package breakglass

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"
)

// alertIPCase is one row of testdata/alert_ip_cases.json, the table the Python binding's
// tests read too.
type alertIPCase struct {
	IP   string `json:"ip"`
	Sent string `json:"sent"`
}

func loadAlertIPCases(t *testing.T) []alertIPCase {
	t.Helper()
	data, err := os.ReadFile("testdata/alert_ip_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Cases []alertIPCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &table); err != nil {
		t.Fatal(err)
	}
	if len(table.Cases) == 0 {
		t.Fatal("no cases in testdata/alert_ip_cases.json")
	}
	return table.Cases
}

// An empty ip and a NUL byte reach the webhook as the shared table says, one alert at a time.
func TestAlertIPEdgeCasesMatchTheSharedTable(t *testing.T) {
	fresh(t)
	s := startServers(t, "ok", "ok")
	set(t, "alert_webhook_url", s.hookURL(), "delivery_timeout_ms", "5000")
	for i, c := range loadAlertIPCases(t) {
		if err := Alert(c.IP); err != nil {
			t.Fatalf("Alert(%s) = %v, want nil", strconv.Quote(c.IP), err)
		}
		mustFlush(t, 20*time.Second)
		_, reqs := s.wait(t, 0, i+1, 10*time.Second)
		var body struct {
			IP string `json:"ip"`
		}
		if err := json.Unmarshal([]byte(reqs[i].Body), &body); err != nil {
			t.Fatalf("webhook body: %v\n%s", err, reqs[i].Body)
		}
		if body.IP != c.Sent {
			t.Errorf("Alert(%s): the webhook got ip %s, want %s", strconv.Quote(c.IP),
				strconv.Quote(body.IP), strconv.Quote(c.Sent))
		}
	}
}
