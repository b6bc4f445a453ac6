package projections_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProjectionsImportNoTransport keeps the projectors free of the socket
// hub and the bus: they write to the outbox (pgx only), and neither melody,
// gorilla/websocket, gin, sarama nor watermill may be among their
// dependencies.
func TestProjectionsImportNoTransport(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	banned := []string{"github.com/olahol/melody", "github.com/gorilla/websocket", "github.com/gin-gonic/gin",
		"github.com/IBM/sarama", "github.com/ThreeDotsLabs/watermill", "github.com/lockstep/lockstep/live"}
	for dep := range strings.FieldsSeq(string(out)) {
		for _, b := range banned {
			if dep == b || strings.HasPrefix(dep, b+"/") || strings.HasPrefix(dep, b+"-") {
				t.Errorf("projections depends on %s", dep)
			}
		}
	}
}
