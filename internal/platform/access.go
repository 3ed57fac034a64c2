package platform

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// checkPostgresCanReach reports whether, when the platform runs as root, the
// "postgres" user (whom PostgreSQL runs as, since it refuses root) can enter
// every directory above dir — not so for a checkout under /root. Without the
// check PostgreSQL fails with a bare "permission denied" in its log.
func checkPostgresCanReach(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil // infra falls back to "nobody"; let it report
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return traversable(dir, uint32(uid), uint32(gid))
}

// traversable checks that uid/gid may search every existing ancestor of dir.
func traversable(dir string, uid, gid uint32) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil {
			sys, ok := st.Sys().(*syscall.Stat_t)
			mode := st.Mode().Perm()
			if ok {
				can := mode&0o001 != 0 ||
					(sys.Uid == uid && mode&0o100 != 0) ||
					(sys.Gid == gid && mode&0o010 != 0)
				if !can {
					return fmt.Errorf("PostgreSQL runs as user postgres, which cannot enter %s (mode %04o)", d, mode)
				}
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
