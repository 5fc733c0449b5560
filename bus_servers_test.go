package idmap_test

import (
	"context"
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
)

// BusUser is on a table of its own per test process (servers are shared).
type BusUser struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

var busUsersTable = "bus_users_" + idmap.RunID

func init() { idmap.Model[BusUser](idmap.Table(busUsersTable)) }

// The bus on the servers: what a committed write publishes, and what a
// received message expires, through MariaDB (both argument modes) and
// PostgreSQL.
func TestBusOnServers(t *testing.T) {
	type server struct{ name, base, dsn, dialect string }
	var servers []server
	if dsn := os.Getenv("IDMAP_MYSQL_DSN"); dsn != "" {
		servers = append(servers, server{"MySQL", "mysql", dsn, "mysql"}, server{"MySQLInterpolate", "mysql", dsn + "&interpolateParams=true", "mysql"})
	}
	if dsn := os.Getenv("IDMAP_PG_DSN"); dsn != "" {
		servers = append(servers, server{"Postgres", "pgx", dsn, "postgres"})
	}
	if len(servers) == 0 {
		t.Skip("bus tests on servers skipped: IDMAP_MYSQL_DSN and IDMAP_PG_DSN are not set")
	}
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			ctx := context.Background()
			q := (&testDriver{dialect: s.dialect}).q
			l := bus.NewLoopback()
			defer l.Close()
			name := "bus-" + s.name + "-" + idmap.RunID
			db, err := idmap.Open(s.base, s.dsn, idmap.Name(name), idmap.WithBus(l))
			require.NoError(t, err)
			defer db.Close()
			rec := record(t, l)
			mustExec(t, db, "DROP TABLE IF EXISTS "+busUsersTable)
			mustExec(t, db, "CREATE TABLE "+busUsersTable+" (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL)")
			defer db.Exec("DROP TABLE IF EXISTS " + busUsersTable)
			mustExec(t, db, q("INSERT INTO "+busUsersTable+" (id, name) VALUES (?, ?), (?, ?), (?, ?)"), 1, "a", 2, "b", 3, "c")
			rec.take(l)

			mustExec(t, db, q("UPDATE "+busUsersTable+" SET name = ? WHERE id = ?"), "x", 2)
			require.Equal(t, []string{busUsersTable + ":[2]"}, rec.take(l))

			tx, err := db.BeginTx(ctx, nil)
			require.NoError(t, err)
			mustExec(t, tx, q("UPDATE "+busUsersTable+" SET name = ? WHERE id = ?"), "y", 1)
			mustExec(t, tx, q("DELETE FROM "+busUsersTable+" WHERE id = ?"), 3)
			require.Empty(t, rec.take(l))
			require.NoError(t, tx.Commit())
			require.Equal(t, []string{busUsersTable + ":[1 3]"}, rec.take(l))

			tx, err = db.BeginTx(ctx, nil)
			require.NoError(t, err)
			mustExec(t, tx, q("UPDATE "+busUsersTable+" SET name = ? WHERE id = ?"), "z", 1)
			require.NoError(t, tx.Rollback())
			require.Empty(t, rec.take(l))

			// A message from another instance expires what it names.
			u, err := idmap.Get[BusUser](ctx, db, 1)
			require.NoError(t, err)
			require.Equal(t, "y", u.Name)
			require.NotNil(t, idmap.Cached[BusUser](ctx, db, 1))
			defer runtime.KeepAlive(u) // the shared map holds its objects weakly
			require.NoError(t, l.Publish(ctx, []bus.Message{{Origin: "elsewhere", Seq: 1, DB: name, Table: busUsersTable, Keys: []any{int64(1)}, Columns: []string{"id"}}}))
			l.Sync()
			require.Nil(t, idmap.Cached[BusUser](ctx, db, 1))
		})
	}
}

// PostgreSQL's id = ANY($1) with an array argument expires exactly the
// rows of its elements (pgx passes Go slices as arrays).
func TestAnyArrayExpiresItsKeys(t *testing.T) {
	if os.Getenv("IDMAP_PG_DSN") == "" {
		t.Skip("Postgres tests skipped: IDMAP_PG_DSN is not set")
	}
	for _, d := range testDrivers() {
		if d.dialect != "postgres" {
			continue // = ANY($1) is PostgreSQL's
		}
		t.Run(d.name, func(t *testing.T) { anyArrayExpires(t, d) })
	}
}

func anyArrayExpires(t *testing.T, d *testDriver) {
	db, _ := d.open(t)
	defer db.Close()
	d.seed(t, db, 4)
	ctx := context.Background()
	var held []*User // the shared map holds its objects weakly: keep them
	defer runtime.KeepAlive(&held)
	for id := 1; id <= 4; id++ {
		u, err := idmap.Get[User](ctx, db, id)
		require.NoError(t, err)
		held = append(held, u)
	}
	mustExec(t, db, "UPDATE users SET name = 'n' WHERE id = ANY($1)", []int64{1, 3})
	for id, want := range map[int]bool{1: false, 2: true, 3: false, 4: true} {
		require.Equal(t, want, idmap.Cached[User](ctx, db, id) != nil, "user %d", id)
	}
	u, err := idmap.Get[User](ctx, db, 3)
	require.NoError(t, err)
	require.Equal(t, "n", u.Name)
	mustExec(t, db, "DELETE FROM users WHERE id = ANY($1)", []string{"2"})
	require.Nil(t, idmap.Cached[User](ctx, db, 2))
	require.NotNil(t, idmap.Cached[User](ctx, db, 4))
}
