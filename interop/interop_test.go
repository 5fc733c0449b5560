package interop_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/georgysavva/scany/v2/sqlscan"
	"github.com/jmoiron/sqlx"
	_ "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/go-idmap/idmap"
)

// User is mapped for idmap (TableName, db tags) and usable by sqlx, scany
// and GORM as it is.
type User struct {
	ID     int64  `db:"id" gorm:"primaryKey"`
	Name   string `db:"name"`
	Visits int    `db:"-" gorm:"-"`
}

func (User) TableName() string { return "users" }

func open(t *testing.T) (*sql.DB, string) {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "interop.db") + "?_journal_mode=WAL&_busy_timeout=5000"
	db, err := sql.Open("idmap+sqlite3", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
		INSERT INTO users VALUES (1, 'ann'), (2, 'bob'), (3, 'cy')`)
	require.NoError(t, err)
	return db, dsn
}

// sqlx scans; Intern makes its objects canonical.
func TestSqlxThenIntern(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	db, _ := open(t)
	x := sqlx.NewDb(db, "sqlite3")
	var us []*User
	require.NoError(t, x.SelectContext(ctx, &us, "SELECT id, name FROM users ORDER BY id"))
	require.NoError(t, idmap.Intern(ctx, db, us))
	u1, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.Same(t, us[0], u1, "Get returns the interned object")

	// A second sqlx scan, interned: the same pointers.
	var again []*User
	require.NoError(t, x.SelectContext(ctx, &again, "SELECT id, name FROM users WHERE id <= 2 ORDER BY id"))
	require.NoError(t, idmap.Intern(ctx, db, again))
	require.Same(t, us[0], again[0])
	require.Same(t, us[1], again[1])
}

// scany scans; Intern makes its objects canonical.
func TestScanyThenIntern(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	db, _ := open(t)
	b, err := idmap.Get[User](ctx, db, 2)
	require.NoError(t, err)
	var us []*User
	require.NoError(t, sqlscan.Select(ctx, db, &us, "SELECT id, name FROM users ORDER BY id"))
	require.NoError(t, idmap.Intern(ctx, db, us))
	require.Same(t, b, us[1], "the scanned row became the canonical object")
}

// getUser is what sqlc generates for `-- name: GetUser :one`.
func getUser(ctx context.Context, db *sql.DB, id int64) (User, error) {
	row := db.QueryRowContext(ctx, "SELECT id, name FROM users WHERE id = ?", id)
	var u User
	err := row.Scan(&u.ID, &u.Name)
	return u, err
}

// sqlc-style generated code returns values; Intern makes them canonical.
func TestSqlcStyleThenIntern(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	db, _ := open(t)
	u, err := getUser(ctx, db, 3)
	require.NoError(t, err)
	objs := []*User{&u}
	require.NoError(t, idmap.Intern(ctx, db, objs))
	got, err := idmap.Get[User](ctx, db, 3)
	require.NoError(t, err)
	require.Same(t, objs[0], got)
}

// GORM on the idmap driver: its writes go through idmap and expire what
// they touch.
func TestGORMWritesExpire(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	_, dsn := open(t)
	gdb, err := gorm.Open(sqlite.New(sqlite.Config{DriverName: "idmap+sqlite3", DSN: dsn}), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	sqlDB, err := gdb.DB()
	require.NoError(t, err)
	t.Cleanup(func() { sqlDB.Close() })
	require.NotEmpty(t, idmap.NameOf(sqlDB), "GORM's *sql.DB runs on idmap")

	u1, err := idmap.Get[User](ctx, sqlDB, 1)
	require.NoError(t, err)
	u2, err := idmap.Get[User](ctx, sqlDB, 2)
	require.NoError(t, err)

	require.NoError(t, gdb.WithContext(ctx).Model(&User{}).Where("id = ?", 1).Update("name", "ann (gorm)").Error)
	require.Nil(t, idmap.Cached[User](ctx, sqlDB, 1), "a GORM update left its row fresh")
	require.Same(t, u2, idmap.Cached[User](ctx, sqlDB, 2), "a GORM update by key expired another key")
	got, err := idmap.Get[User](ctx, sqlDB, 1)
	require.NoError(t, err)
	require.Same(t, u1, got)
	require.Equal(t, "ann (gorm)", got.Name)

	require.NoError(t, gdb.WithContext(ctx).Delete(&User{}, 2).Error)
	_, err = idmap.Get[User](ctx, sqlDB, 2)
	require.ErrorIs(t, err, sql.ErrNoRows, "a GORM delete was not seen")

	require.NoError(t, gdb.WithContext(ctx).Create(&User{ID: 4, Name: "dee"}).Error)
	d, err := idmap.Get[User](ctx, sqlDB, 4)
	require.NoError(t, err)
	require.Equal(t, "dee", d.Name)

	// GORM reading, idmap binding: GORM's rows through Bind.
	rows, err := gdb.WithContext(ctx).Model(&User{}).Select("id", "name").Order("id").Rows()
	require.NoError(t, err)
	var us []*User
	require.NoError(t, idmap.Bind(rows, &us))
	require.Same(t, u1, us[0])
}
