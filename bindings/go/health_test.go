package breakglass

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// deadMailer is an SMTP URL on a loopback port with nothing listening.
func deadMailer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return "smtp://127.0.0.1:" + strconv.Itoa(port) + "?tls=opportunistic"
}

func TestDeliveryHealthNamesTheFailingCodeEmailAndRecovers(t *testing.T) {
	fresh(t)
	set(t, "mailer", deadMailer(t), "from_email", "bg@example.com",
		"otp_email", "oncall@example.com", "delivery_timeout_ms", "1000")
	if err := SendOTP(mustGenerate(t)); err != nil {
		t.Fatalf("SendOTP (queued): %v", err)
	}
	mustFlush(t, 30*time.Second)
	rows, err := DeliveryHealth()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 2 || rows[0].Path != "code email" || rows[1].Path != "alert email" {
		t.Fatalf("rows: %+v", rows)
	}
	if !rows[0].Failing || rows[0].LastFailure.IsZero() || rows[0].LastFailureReason == "" {
		t.Fatalf("the code email should be failing with a reason: %+v", rows[0])
	}
	if failing, err := CodeEmailFailing(); err != nil || !failing {
		t.Fatalf("CodeEmailFailing = %v, %v", failing, err)
	}

	s := startServers(t, "ok", "ok")
	set(t, "mailer", s.smtpURL())
	if err := SendOTP(mustGenerate(t)); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, 30*time.Second)
	mails, _ := s.wait(t, 1, 0, 10*time.Second)
	if !strings.Contains(mails[0].Data, "Message-ID: <") || !strings.Contains(mails[0].Data, "Date: ") {
		t.Errorf("Message-ID and Date expected in:\n%s", mails[0].Data)
	}
	if failing, _ := CodeEmailFailing(); failing {
		t.Errorf("delivered now: not failing")
	}
}
