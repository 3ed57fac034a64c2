package cli

import (
	"testing"

	"github.com/overture-music/overture/internal/testenv"
)

// TestMain gives the command tests real PostgreSQL/Redis from testenv.
func TestMain(m *testing.M) { testenv.Main(m) }
