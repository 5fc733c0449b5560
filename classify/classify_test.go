package classify

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// corpus holds real statements per dialect with the expected
// classification, written as Statement.String gives it. It also seeds the
// fuzz test.
var corpus = []struct {
	d         Dialect
	sql, want string
}{
	// Nothing.
	{SQLite, "", ""},
	{SQLite, "  ;; ", ""},
	{SQLite, "-- just a comment", ""},
	{Postgres, "/* a /* nested */ comment */", ""},
	{MySQL, "# a comment\n", ""},

	// Reads.
	{SQLite, "SELECT * FROM users WHERE id = ?", "read args=1"},
	{SQLite, "select id, name from users where name like ? order by id limit 10", "read args=1"},
	{Postgres, "SELECT nextval('users_id_seq')", "read"},
	{Postgres, "SELECT * FROM users WHERE id = $1 AND org = $3", "read args=3"},
	{MySQL, "SELECT `id`, `name` FROM `users` WHERE `id` IN (?, ?, ?)", "read args=3"},
	{SQLite, "VALUES (1, 2), (3, 4)", "read"},
	{Postgres, "TABLE users", "read"},
	{SQLite, "(SELECT 1) UNION (SELECT 2) ORDER BY 1", "read"},
	{SQLite, "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 10) SELECT n FROM c", "read"},
	{Postgres, "WITH a AS MATERIALIZED (SELECT 1), b AS NOT MATERIALIZED (SELECT 2) SELECT * FROM a, b", "read"},
	{SQLite, "SELECT replace(name, 'a', 'b'), insert_at FROM t", "read"},
	{MySQL, "SELECT INSERT('Quadratic', 3, 4, 'What'), REPLACE(name, 'x', 'y'), TRUNCATE(1.223, 1)", "read"},
	{SQLite, "SELECT 'UPDATE users SET x = 1', \"DELETE\" FROM t -- ; DROP TABLE users", "read"},
	{Postgres, "SELECT $$DELETE FROM users$$, $fn$ UPDATE t SET x = 1 $fn$", "read"},
	{Postgres, "SELECT E'it\\'s; DELETE FROM users'", "read"},
	{MySQL, "SELECT 'it\\'s; DELETE FROM users'", "read wholedb delete(users)"},
	{MySQL, "SELECT 'it''s; DELETE FROM users'", "read"},
	{SQLite, "SELECT [update], `delete` FROM [my table]", "read"},
	{SQLite, "SELECT ?, ?5, ?, :name, @other, $third", "read args=9"},
	{Postgres, "SELECT data ? 'key', data ?| array['a'] FROM t WHERE id = $1", "read args=1"},
	{SQLite, "SELECT * FROM t WHERE x = '?' AND y = ? -- ?", "read args=1"},
	{Postgres, "SELECT u.update FROM users u", "read"},
	{Postgres, "SHOW search_path", "read"},
	{MySQL, "SHOW TABLES", "read"},
	{MySQL, "DESCRIBE users", "read"},
	{MySQL, "SELECT * FROM t1 JOIN t2 USING (id) WHERE t1.x = 1 GROUP BY t1.id HAVING count(*) > 1", "read"},
	{Postgres, "SELECT * FROM users WHERE id = ANY($1::bigint[])", "read args=1"},
	{Postgres, "DECLARE c CURSOR WITH HOLD FOR SELECT * FROM users", "read"},
	{Postgres, "FETCH 10 FROM c", "read"},
	{SQLite, "PRAGMA table_info(users)", "read"},
	{SQLite, "PRAGMA user_version", "read"},
	{SQLite, "PRAGMA main.journal_mode", "read"},
	{MySQL, "SELECT * FROM t WHERE a = 1 -- comment\n AND b = 2", "read"},
	{MySQL, "SELECT 1--1", "read"},
	{MySQL, "SELECT @x := 1, @@session.sql_mode", "read"},

	// Locking reads.
	{Postgres, "SELECT * FROM users WHERE id = $1 FOR UPDATE", "read locking args=1"},
	{Postgres, "SELECT * FROM users FOR NO KEY UPDATE OF users NOWAIT", "read locking"},
	{Postgres, "SELECT * FROM jobs WHERE state = 'new' LIMIT 1 FOR UPDATE SKIP LOCKED", "read locking"},
	{Postgres, "SELECT * FROM a JOIN b ON a.id = b.a FOR SHARE OF a FOR KEY SHARE OF b", "read locking"},
	{MySQL, "SELECT * FROM users WHERE id = ? LOCK IN SHARE MODE", "read locking args=1"},
	{MySQL, "SELECT * FROM users WHERE id = ? FOR SHARE", "read locking args=1"},
	{MySQL, "SELECT * FROM users WHERE id = ? FOR UPDATE WAIT 5", "read locking args=1"},
	{Postgres, "WITH x AS (SELECT * FROM t FOR UPDATE) SELECT * FROM x", "read locking"},

	// UPDATE.
	{SQLite, "UPDATE users SET name = ? WHERE id = ?", "update(users where=id:[(?2)] set=name=?1) args=2"},
	{Postgres, "UPDATE users SET name = $2, visits = visits + 1 WHERE id = $1", "update(users where=id:[(?1)] set=name=?2,visits) args=2"},
	{Postgres, "update Users set Name = 'x' where ID = 5", "update(users where=id:[(5)] set=name=\"x\")"},
	{Postgres, `UPDATE "Users" SET "Name" = 'x' WHERE "ID" = -5`, `update(Users where=ID:[(-5)] set=Name="x")`},
	{MySQL, "UPDATE `Users` SET `Name` = 'x' WHERE `ID` = 5", `update(Users where=ID:[(5)] set=Name="x")`},
	{Postgres, "UPDATE public.users SET x = 1 WHERE users.id = 3", "update(public.users where=id:[(3)] set=x=1)"},
	{Postgres, "UPDATE public.users SET x = 1 WHERE public.users.id = 3", "update(public.users where=id:[(3)] set=x=1)"},
	{Postgres, "UPDATE users u SET x = 1 WHERE u.id = $1", "update(users where=id:[(?1)] set=x=1) args=1"},
	{Postgres, "UPDATE users AS u SET x = 1 WHERE users.id = $1", "update(users set=x=1) args=1"},
	{Postgres, "UPDATE users u SET x = 1 FROM orders o WHERE o.user_id = u.id AND o.id = $1 AND u.org = $2", "update(users where=org:[(?2)] set=x=1) args=2"},
	{Postgres, "UPDATE ONLY users SET x = 1 WHERE id = 1", "update(users where=id:[(1)] set=x=1)"},
	{SQLite, "UPDATE users SET x = 1 WHERE id = 1 OR id = 2", "update(users set=x=1)"},
	{SQLite, "UPDATE users SET x = 1 WHERE (id = 1 OR id = 2) AND org = 3", "update(users where=org:[(3)] set=x=1)"},
	{SQLite, "UPDATE users SET x = 1 WHERE ((id = 1 AND org = 3))", "update(users where=id:[(1)] where=org:[(3)] set=x=1)"},
	{SQLite, "UPDATE users SET x = 1 WHERE a = 1 AND b = 2 OR c = 3", "update(users set=x=1)"},
	{SQLite, "UPDATE users SET x = 1 WHERE 7 = id", "update(users where=id:[(7)] set=x=1)"},
	{SQLite, "UPDATE users SET x = 1 WHERE id IN (1, 2, ?)", "update(users where=id:[(1) (2) (?1)] set=x=1) args=1"},
	{SQLite, "UPDATE users SET x = 1 WHERE id IN ()", "update(users where=id:[] set=x=1)"},
	{SQLite, "UPDATE users SET x = 1 WHERE id NOT IN (1, 2)", "update(users set=x=1)"},
	{SQLite, "UPDATE users SET x = 1 WHERE id IN (SELECT user_id FROM banned)", "read update(users set=x=1)"},
	{SQLite, "UPDATE t SET x = 1 WHERE (a, b) = (1, 'q')", `update(t where=a,b:[(1,"q")] set=x=1)`},
	{MySQL, "UPDATE t SET x = 1 WHERE (a, b) IN ((1, 2), (?, ?))", "update(t where=a,b:[(1,2) (?1,?2)] set=x=1) args=2"},
	{SQLite, "UPDATE t SET x = 1 WHERE a BETWEEN 1 AND 5 AND id = 3", "update(t where=id:[(3)] set=x=1)"},
	{SQLite, "UPDATE t SET x = 1 WHERE CASE WHEN a AND id = 3 AND b THEN 1 END = 1", "update(t set=x=1)"},
	{SQLite, "UPDATE t SET x = 1 WHERE id = 1 + 1 AND k = NULL AND z = TRUE", "update(t where=k:[(NULL)] where=z:[(true)] set=x=1)"},
	{SQLite, "UPDATE t SET x = 1 WHERE id == 4 AND y = 1.5 AND z = x'0aff'", "update(t where=id:[(4)] where=y:[(1.5)] where=z:[(x'0aff')] set=x=1)"},
	{SQLite, `UPDATE t SET x = 1 WHERE id = "abc"`, "update(t set=x=1)"},
	{MySQL, `UPDATE t SET x = 1 WHERE id = "abc"`, "update(t set=x=1)"},
	{MySQL, `UPDATE t SET x = 1 WHERE id = 0x1F AND k = 'a\'b'`, "wholedb update(t set=x=1)"},
	{SQLite, `UPDATE t SET x = 1 WHERE id = 0x1F`, "update(t where=id:[(31)] set=x=1)"},
	{Postgres, "UPDATE t SET x = 1 WHERE id = $1::uuid AND k = '5'::int", "update(t where=id:[(?1)] set=x=1) args=1"},
	{Postgres, "UPDATE t SET x = 1 WHERE id = $2 RETURNING *", "update(t where=id:[(?2)] set=x=1 returning) args=2"},
	{Postgres, "UPDATE t SET (a, b) = ($1, $2) WHERE id = $3", "update(t where=id:[(?3)] set=a=?1,b=?2) args=3"},
	{Postgres, "UPDATE t SET (a, b) = (SELECT 1, 2) WHERE id = $3", "read update(t where=id:[(?3)] set=a,b) args=3"},
	{Postgres, "UPDATE t SET a = DEFAULT, b = NULL WHERE CURRENT OF c", "update(t set=a,b=NULL)"},
	{SQLite, "UPDATE OR REPLACE t SET email = ? WHERE id = ?", "update(t set=email=?1) args=2"},
	{SQLite, "UPDATE OR IGNORE t SET email = ? WHERE id = ?", "update(t where=id:[(?2)] set=email=?1) args=2"},
	{SQLite, "UPDATE t SET x = 1 FROM (SELECT id FROM u) AS s WHERE t.id = s.id", "read update(t set=x=1)"},
	{SQLite, "UPDATE t SET x = 1 WHERE id = ? RETURNING id", "update(t where=id:[(?1)] set=x=1 returning) args=1"},
	{SQLite, "UPDATE t SET x = 1 WHERE id = :id", "update(t where=id:[(:id)] set=x=1) args=1"},
	{SQLite, "UPDATE t SET x = ?3 WHERE id = ?1", "update(t where=id:[(?1)] set=x=?3) args=3"},
	{MySQL, "UPDATE LOW_PRIORITY IGNORE t SET x = 1 WHERE id = 1 ORDER BY id LIMIT 1", "update(t where=id:[(1)] set=x=1)"},
	{MySQL, "UPDATE t1, t2 SET t1.a = t2.a WHERE t1.id = t2.id AND t1.id = 5", "update(t1 where=id:[(5)] set=a) update(t2)"},
	{MySQL, "UPDATE items i JOIN orders o ON o.item = i.id SET i.qty = i.qty - 1, o.done = 1 WHERE o.id = ?", "update(items set=qty) update(orders where=id:[(?1)] set=done=1) args=1"},
	{MySQL, "UPDATE t1 LEFT JOIN (SELECT * FROM t3) x ON x.id = t1.id SET t1.a = 1", "read update(t1 set=a=1)"},
	{MySQL, "UPDATE t SET a = 1 WHERE id = 1 || id = 2", "update(t set=a=1)"},
	{MySQL, "UPDATE `db`.`t` SET a = 1 WHERE `t`.`id` = 1", "update(db.t where=id:[(1)] set=a=1)"},
	{MySQL, "UPDATE T SET a = 1 WHERE t.id = 1", "update(T set=a=1)"},
	{SQLite, "UPDATE T SET a = 1 WHERE t.id = 1", "update(T where=id:[(1)] set=a=1)"},
	{MySQL, "update users set name = ? where id = ?", "update(users where=id:[(?2)] set=name=?1) args=2"},

	// DELETE.
	{SQLite, "DELETE FROM users WHERE id = ?", "delete(users where=id:[(?1)]) args=1"},
	{SQLite, "DELETE FROM users", "delete(users)"},
	{Postgres, "DELETE FROM ONLY users u USING orgs o WHERE u.org = o.id AND o.name = $1 AND u.id = $2 RETURNING u.id", "delete(users where=id:[(?2)] returning) args=2"},
	{Postgres, "DELETE FROM sessions WHERE expires < now()", "delete(sessions)"},
	{MySQL, "DELETE LOW_PRIORITY QUICK IGNORE FROM t WHERE id = 1 ORDER BY id LIMIT 5", "delete(t where=id:[(1)])"},
	{MySQL, "DELETE t1, t2 FROM t1 INNER JOIN t2 ON t1.id = t2.ref WHERE t1.id = ?", "delete(t1 where=id:[(?1)]) delete(t2) args=1"},
	{MySQL, "DELETE a FROM users AS a JOIN bans b ON b.uid = a.id WHERE a.id = 3", "delete(users where=id:[(3)]) delete(a where=id:[(3)])"},
	{MySQL, "DELETE FROM t1.*, t2.* USING t1 JOIN t2 ON t1.id = t2.id", "delete(t1) delete(t2)"},
	{SQLite, "DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY id LIMIT 5)", "read delete(t)"},
	{MySQL, "DELETE FROM t WHERE x", "delete(t)"},

	// INSERT, REPLACE, upserts.
	{SQLite, "INSERT INTO users (id, name) VALUES (?, ?)", "insert(users cols=id,name values=[(?1,?2)]) args=2"},
	{SQLite, "INSERT INTO users VALUES (1, 'a')", "insert(users)"},
	{SQLite, "INSERT INTO users DEFAULT VALUES", "insert(users)"},
	{SQLite, "INSERT INTO users (id, name) SELECT id, name FROM old_users", "read insert(users cols=id,name)"},
	{Postgres, "INSERT INTO users (name) VALUES ($1), ($2) RETURNING id", "insert(users cols=name values=[(?1) (?2)] returning) args=2"},
	{Postgres, "INSERT INTO users (id, created) VALUES (DEFAULT, now())", "insert(users cols=id,created values=[(expr,expr)])"},
	{Postgres, "INSERT INTO users AS u (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name WHERE u.name <> EXCLUDED.name", "upsert(users cols=id,name values=[(?1,?2)] conflict=id set=name) args=2"},
	{Postgres, "INSERT INTO users (id, email) VALUES ($1, $2) ON CONFLICT (email) DO UPDATE SET id = $1", "upsert(users cols=id,email values=[(?1,?2)] conflict=email set=id=?1) args=2"},
	{Postgres, "INSERT INTO users (id) VALUES (1) ON CONFLICT ON CONSTRAINT users_pkey DO UPDATE SET n = users.n + 1", "upsert(users cols=id values=[(1)] set=n)"},
	{Postgres, "INSERT INTO users (id) VALUES (1) ON CONFLICT DO NOTHING", "insert(users cols=id values=[(1)])"},
	{Postgres, "INSERT INTO users (id) VALUES (1) ON CONFLICT (lower(email)) DO UPDATE SET n = 1", "upsert(users cols=id values=[(1)] set=n=1)"},
	{Postgres, "INSERT INTO t (a) OVERRIDING SYSTEM VALUE VALUES (1)", "insert(t cols=a values=[(1)])"},
	{SQLite, "INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", "upsert(kv cols=k,v values=[(?1,?2)]) args=2"},
	{SQLite, "INSERT OR IGNORE INTO kv (k, v) VALUES (?, ?)", "insert(kv cols=k,v values=[(?1,?2)]) args=2"},
	{SQLite, "REPLACE INTO kv (k, v) VALUES (?, ?)", "replace(kv cols=k,v values=[(?1,?2)]) args=2"},
	{SQLite, "INSERT INTO kv (k, v) VALUES (1, 2) ON CONFLICT (k) DO UPDATE SET v = excluded.v ON CONFLICT DO NOTHING", "upsert(kv cols=k,v values=[(1,2)] conflict=k set=v)"},
	{SQLite, "INSERT INTO t SELECT * FROM u WHERE true ON CONFLICT (id) DO UPDATE SET x = 1", "read upsert(t conflict=id set=x=1)"},
	{SQLite, "WITH n AS (SELECT 1 AS id) INSERT INTO t (id) SELECT id FROM n", "read insert(t cols=id)"},
	{MySQL, "INSERT INTO users (id, name) VALUES (?, ?) ON DUPLICATE KEY UPDATE name = VALUES(name)", "upsert(users cols=id,name values=[(?1,?2)] set=name) args=2"},
	{MySQL, "INSERT INTO users (id, name) VALUES (?, ?) AS new ON DUPLICATE KEY UPDATE name = new.name", "upsert(users cols=id,name values=[(?1,?2)] set=name) args=2"},
	{MySQL, "INSERT IGNORE INTO users (id) VALUES (1)", "insert(users cols=id values=[(1)])"},
	{MySQL, "INSERT LOW_PRIORITY users (id) VALUE (1)", "insert(users cols=id values=[(1)])"},
	{MySQL, "INSERT INTO users SET id = 1, name = 'x'", `insert(users cols=id,name values=[(1,"x")])`},
	{MySQL, "INSERT INTO t () VALUES ()", "insert(t cols= values=[()])"},
	{MySQL, "REPLACE INTO users (id, name) VALUES (1, 'a')", `replace(users cols=id,name values=[(1,"a")])`},
	{MySQL, "REPLACE DELAYED users SET id = 2", "replace(users cols=id values=[(2)])"},
	{MySQL, "INSERT INTO t (a) SELECT a FROM u ON DUPLICATE KEY UPDATE a = u.a", "read upsert(t cols=a set=a)"},
	{MySQL, "INSERT INTO t PARTITION (p1) (a) VALUES (1)", "insert(t cols=a values=[(1)])"},
	{MySQL, "INSERT INTO t (a) VALUES (1) RETURNING a", "insert(t cols=a values=[(1)] returning)"},

	// CTEs that write.
	{Postgres, "WITH moved AS (DELETE FROM queue WHERE id = $1 RETURNING *) INSERT INTO done SELECT * FROM moved", "read delete(queue where=id:[(?1)] returning) insert(done) args=1"},
	{Postgres, "WITH u AS (UPDATE users SET n = n + 1 WHERE id = 1 RETURNING id) SELECT * FROM u", "read update(users where=id:[(1)] set=n returning)"},
	{Postgres, "WITH t AS (SELECT 1) UPDATE real_table SET x = 1", "read update(real_table set=x=1)"},
	{SQLite, "WITH t AS (SELECT id FROM x) DELETE FROM y WHERE id IN (SELECT id FROM t)", "read delete(y)"},
	{MySQL, "WITH cte AS (SELECT 1 AS id) UPDATE t JOIN cte ON cte.id = t.id SET t.x = 1", "read update(t set=x=1) update(cte)"},

	// MERGE, COPY, LOAD DATA, REFRESH.
	{Postgres, "MERGE INTO accounts a USING staged s ON s.id = a.id WHEN MATCHED THEN UPDATE SET balance = s.balance WHEN NOT MATCHED THEN INSERT (id, balance) VALUES (s.id, s.balance)", "merge(accounts)"},
	{Postgres, "MERGE INTO t USING (SELECT 1 AS id) s ON s.id = t.id WHEN MATCHED THEN DELETE", "read merge(t)"},
	{Postgres, "COPY users (id, name) FROM STDIN WITH (FORMAT csv)", "insert(users)"},
	{Postgres, "COPY users TO STDOUT", "read"},
	{Postgres, "COPY (SELECT * FROM users) TO STDOUT", "read"},
	{MySQL, "LOAD DATA LOCAL INFILE '/tmp/x.csv' REPLACE INTO TABLE users FIELDS TERMINATED BY ','", "replace(users)"},
	{MySQL, "LOAD DATA INFILE 'x' INTO TABLE db.users", "insert(db.users)"},
	{Postgres, "REFRESH MATERIALIZED VIEW CONCURRENTLY stats", "refresh(stats)"},

	// SELECT … INTO.
	{Postgres, "SELECT * INTO TEMP new_users FROM users", "read schema(new_users)"},
	{Postgres, "SELECT id INTO backup.users_copy FROM users", "read schema(backup.users_copy)"},
	{MySQL, "SELECT id INTO @x FROM users LIMIT 1", "read"},
	{MySQL, "SELECT * FROM users INTO OUTFILE '/tmp/x'", "read"},

	// DDL.
	{SQLite, "CREATE TABLE users (id INTEGER PRIMARY KEY, org INTEGER REFERENCES orgs(id) ON DELETE CASCADE ON UPDATE SET NULL)", "schema(users) schema(orgs)"},
	{Postgres, "CREATE TABLE IF NOT EXISTS public.t (id bigserial PRIMARY KEY, x int GENERATED ALWAYS AS (id * 2) STORED)", "schema(public.t)"},
	{Postgres, "CREATE TEMP TABLE t AS SELECT * FROM u", "read schema(t)"},
	{MySQL, "CREATE TABLE t (id INT, ts TIMESTAMP ON UPDATE CURRENT_TIMESTAMP) ENGINE=InnoDB", "implicit-commit schema(t)"},
	{MySQL, "CREATE TEMPORARY TABLE t SELECT * FROM u", "read schema(t)"},
	{MySQL, "CREATE TABLE t2 LIKE t1", "implicit-commit schema(t2)"},
	{Postgres, "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (lower(email)) WHERE deleted IS NULL", "schema(users)"},
	{SQLite, "CREATE INDEX aux.i ON t (x)", "schema(aux.t)"},
	{MySQL, "CREATE INDEX i ON t (x)", "implicit-commit schema(t)"},
	{Postgres, "CREATE OR REPLACE VIEW active AS SELECT * FROM users WHERE active", "schema(active)"},
	{MySQL, "CREATE ALGORITHM=MERGE DEFINER=`admin`@`%` SQL SECURITY DEFINER VIEW v AS SELECT 1", "implicit-commit schema(v)"},
	{Postgres, "CREATE MATERIALIZED VIEW mv AS SELECT * FROM t WITH NO DATA", "schema(mv)"},
	{Postgres, "CREATE TRIGGER tr BEFORE INSERT OR UPDATE OF name ON users FOR EACH ROW EXECUTE FUNCTION f()", "schema(users)"},
	{SQLite, "CREATE TRIGGER IF NOT EXISTS tr AFTER UPDATE OF name ON users WHEN new.name <> old.name BEGIN INSERT INTO log (uid) VALUES (new.id); UPDATE stats SET n = n + 1 WHERE id = 1; END", "insert(log cols=uid values=[(expr)]) update(stats where=id:[(1)] set=n) schema(users)"},
	{SQLite, "CREATE TRIGGER t1 AFTER DELETE ON a BEGIN SELECT CASE WHEN old.x THEN 1 ELSE 2 END; DELETE FROM b WHERE a_id = old.id; END; COMMIT", "read delete(b) schema(a) tx(commit)"},
	{MySQL, "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.created = NOW()", "implicit-commit schema(t)"},
	{MySQL, "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW INSERT INTO log VALUES (NEW.id)", "implicit-commit insert(log) schema(t)"},
	{MySQL, "CREATE DEFINER=CURRENT_USER PROCEDURE p() BEGIN DECLARE x INT DEFAULT 0; IF x = 0 THEN UPDATE t SET a = 1; END IF; SELECT x; END; START TRANSACTION", "read wholedb implicit-commit schema(*) tx(begin)"},
	{Postgres, "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM t; RETURN NEW; END $$", "schema(*)"},
	{Postgres, "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC UPDATE t SET x = 1; SELECT 1; END; COMMIT", "read schema(*) tx(commit)"},
	{Postgres, "CREATE SEQUENCE s", ""},
	{Postgres, "CREATE EXTENSION IF NOT EXISTS pgcrypto", "schema(*)"},
	{Postgres, "ALTER TABLE users ADD COLUMN age int", "schema(users)"},
	{Postgres, "ALTER TABLE IF EXISTS ONLY users RENAME TO people", "schema(users) schema(people)"},
	{Postgres, "ALTER TABLE users RENAME COLUMN a TO b", "schema(users)"},
	{Postgres, "ALTER TABLE users SET SCHEMA archive", "schema(users) schema(archive.users)"},
	{Postgres, "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (uid) REFERENCES users (id) ON DELETE CASCADE", "schema(orders) schema(users)"},
	{Postgres, "ALTER TABLE t ALTER COLUMN x DROP DEFAULT, DROP CONSTRAINT c", "schema(t)"},
	{MySQL, "ALTER TABLE t RENAME u", "implicit-commit schema(t) schema(u)"},
	{MySQL, "ALTER TABLE t RENAME AS u, ALGORITHM=INPLACE", "implicit-commit schema(t) schema(u)"},
	{SQLite, "ALTER TABLE t RENAME TO u", "schema(t) schema(u)"},
	{Postgres, "ALTER SEQUENCE s RESTART", ""},
	{Postgres, "ALTER TYPE mood ADD VALUE 'meh'", "schema(*)"},
	{Postgres, "DROP TABLE IF EXISTS a, b CASCADE", "schema(a) schema(b) schema(*)"},
	{MySQL, "DROP TABLE IF EXISTS a, `b`", "implicit-commit schema(a) schema(b)"},
	{MySQL, "DROP TEMPORARY TABLE IF EXISTS tmp", "schema(tmp)"},
	{Postgres, "DROP INDEX CONCURRENTLY IF EXISTS i", "schema(*)"},
	{MySQL, "DROP INDEX i ON t", "implicit-commit schema(t)"},
	{Postgres, "DROP TRIGGER IF EXISTS tr ON users", "schema(users)"},
	{SQLite, "DROP TRIGGER tr", "schema(*)"},
	{Postgres, "DROP VIEW v", "schema(v)"},
	{Postgres, "DROP MATERIALIZED VIEW IF EXISTS mv", "schema(mv)"},
	{Postgres, "DROP SCHEMA s CASCADE", "schema(*)"},
	{MySQL, "RENAME TABLE a TO b, c TO d", "implicit-commit schema(a) schema(b) schema(c) schema(d)"},
	{Postgres, "TRUNCATE users", "truncate(users) schema(users)"},
	{Postgres, "TRUNCATE TABLE ONLY a, b RESTART IDENTITY CASCADE", "wholedb truncate(a) truncate(b) schema(a) schema(b) schema(*)"},
	{MySQL, "TRUNCATE TABLE t", "implicit-commit truncate(t) schema(t)"},
	{Postgres, "COMMENT ON TABLE users IS 'people'", ""},
	{Postgres, "GRANT SELECT, INSERT, UPDATE ON users TO app", ""},

	// Transaction control.
	{SQLite, "BEGIN", "tx(begin)"},
	{SQLite, "BEGIN IMMEDIATE TRANSACTION", "tx(begin)"},
	{SQLite, "COMMIT TRANSACTION", "tx(commit)"},
	{SQLite, "END", "tx(commit)"},
	{SQLite, "ROLLBACK", "tx(rollback)"},
	{SQLite, "SAVEPOINT sp1", "tx(savepoint sp1)"},
	{SQLite, "RELEASE sp1", "tx(release sp1)"},
	{SQLite, "RELEASE SAVEPOINT sp1", "tx(release sp1)"},
	{SQLite, "ROLLBACK TRANSACTION TO SAVEPOINT sp1", "tx(rollback to sp1)"},
	{Postgres, "ROLLBACK TO Sp1", "tx(rollback to sp1)"},
	{Postgres, "START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE", "tx(begin)"},
	{Postgres, "BEGIN; UPDATE a SET x = 1 WHERE id = 1; COMMIT", "update(a where=id:[(1)] set=x=1) tx(begin) tx(commit)"},
	{Postgres, "COMMIT AND CHAIN", "tx(commit) tx(begin)"},
	{Postgres, "ABORT", "tx(rollback)"},
	{Postgres, "END WORK", "tx(commit)"},
	{Postgres, "PREPARE TRANSACTION 'x'", "tx(rollback)"},
	{Postgres, "COMMIT PREPARED 'x'", "wholedb"},
	{MySQL, "START TRANSACTION WITH CONSISTENT SNAPSHOT", "implicit-commit tx(begin)"},
	{MySQL, "BEGIN WORK", "implicit-commit tx(begin)"},
	{MySQL, "SET autocommit = 0", "tx(begin autocommit)"},
	{MySQL, "SET SESSION autocommit = ON", "implicit-commit tx(commit autocommit)"},
	{MySQL, "SET @@autocommit := 1, @x = 2", "implicit-commit tx(commit autocommit)"},
	{MySQL, "SET GLOBAL autocommit = 1", ""},
	// Every spelling of the session's autocommit; a value that cannot be
	// read is autocommit off and the whole database, never ignored.
	{MySQL, "SET @@session.autocommit = 0", "tx(begin autocommit)"},
	{MySQL, "SET @@SESSION.AUTOCOMMIT := 0", "tx(begin autocommit)"},
	{MySQL, "SET @@local.autocommit = 0", "tx(begin autocommit)"},
	{MySQL, "SET @@global.autocommit = 0", ""},
	{MySQL, "SET autocommit = (0)", "tx(begin autocommit)"},
	{MySQL, "SET autocommit = ((1))", "implicit-commit tx(commit autocommit)"},
	{MySQL, "SET autocommit = 'OFF'", "tx(begin autocommit)"},
	{MySQL, "SET autocommit = 'on'", "implicit-commit tx(commit autocommit)"},
	{MySQL, "SET SESSION autocommit=off", "tx(begin autocommit)"},
	{MySQL, "SET LOCAL autocommit = false", "tx(begin autocommit)"},
	{MySQL, "SET `autocommit` = 0", "tx(begin autocommit)"},
	{MySQL, "SET sql_mode = '', autocommit = 0, @x = 1", "tx(begin autocommit)"},
	{MySQL, "SET autocommit = 0, autocommit = 1", "implicit-commit tx(begin autocommit) tx(commit autocommit)"},
	{MySQL, "SET autocommit = @saved", "wholedb tx(begin autocommit)"},
	{MySQL, "SET autocommit = DEFAULT", "wholedb tx(begin autocommit)"},
	{MySQL, "SET autocommit = 1 - 1", "wholedb tx(begin autocommit)"},
	{MySQL, "SET autocommit = 2", "wholedb tx(begin autocommit)"},
	{MySQL, "SET autocommit", "wholedb tx(begin autocommit)"},
	{MySQL, "USE other", ""},
	{MySQL, "XA START 'x'", "tx(begin)"},
	{MySQL, "LOCK TABLES t WRITE", "implicit-commit"},
	{MySQL, "UNLOCK TABLES", "implicit-commit"},

	// EXPLAIN.
	{Postgres, "EXPLAIN UPDATE t SET x = 1", "read"},
	{Postgres, "EXPLAIN ANALYZE UPDATE t SET x = 1 WHERE id = 1", "read update(t where=id:[(1)] set=x=1)"},
	{Postgres, "EXPLAIN (ANALYZE, BUFFERS) DELETE FROM t", "read delete(t)"},
	{Postgres, "EXPLAIN (COSTS off) DELETE FROM t", "read"},
	{MySQL, "EXPLAIN ANALYZE SELECT * FROM t", "read"},
	{MySQL, "EXPLAIN FORMAT=JSON DELETE FROM t", "read"},
	{SQLite, "EXPLAIN QUERY PLAN DELETE FROM t", "read"},

	// Widen to the whole database.
	{MySQL, "CALL refresh_stats(?)", "wholedb args=1"},
	{Postgres, "CALL p()", "wholedb"},
	{Postgres, "DO $$ BEGIN DELETE FROM t; END $$", "wholedb"},
	{MySQL, "DO SLEEP(1)", "wholedb"},
	{Generic, "EXEC sp_who", "wholedb"},
	{Postgres, "EXECUTE stmt(1)", "wholedb"},
	{Postgres, "PREPARE stmt AS UPDATE t SET x = $1", "args=1"},
	{SQLite, "PRAGMA foreign_keys = ON", "wholedb"},
	{SQLite, "PRAGMA writable_schema(1)", "wholedb"},
	{SQLite, "FROBNICATE users", "wholedb"},
	{SQLite, "UPDATE", "wholedb"},
	{SQLite, "DELETE", "wholedb"},
	{SQLite, "INSERT INTO", "wholedb"},
	{SQLite, "SELECT 'unterminated", "read wholedb"},
	{SQLite, "SELECT (1", "wholedb"},
	{SQLite, "SELECT 1; UPDATE", "read wholedb"},
	{SQLite, "SELECT (1; DELETE FROM t)", "wholedb"},
	{SQLite, "ATTACH DATABASE 'x.db' AS aux", "schema(*)"},
	{MySQL, "/*!40101 UPDATE t SET x = 1 */", "update(t set=x=1)"},
	{MySQL, "/*!99999 'abc */ DELETE FROM t -- ' */", "wholedb delete(t)"},
	{MySQL, "SELECT 1 /*+ MAX_EXECUTION_TIME(1) */", "read"},
	{MySQL, `SELECT "a\"; DELETE FROM t; -- "`, "read delete(t)"},
	{Postgres, `SELECT 'a\'; DELETE FROM t; -- '`, "read delete(t)"},

	// Several statements.
	{SQLite, "INSERT INTO a (id) VALUES (?); UPDATE b SET x = ? WHERE id = ?", "insert(a cols=id values=[(?1)]) update(b where=id:[(?3)] set=x=?2) args=3"},
	{SQLite, "INSERT INTO a (id) VALUES (?1); UPDATE b SET x = ?1 WHERE id = ?2", "insert(a cols=id values=[(?1)]) update(b where=id:[(?3)] set=x=?2) args=3"},
	{MySQL, "SET NAMES utf8mb4; SELECT 1", "read"},
	{SQLite, "VACUUM; ANALYZE; REINDEX", ""},

	// Generic.
	{Generic, "UPDATE users SET name = ? WHERE id = ?", "update(users where=id:[(?2)] set=name=?1) args=2"},
	{Generic, "UPDATE users SET name = @name WHERE id = @id", "update(users where=id:[(:id)] set=name=:name)"},
	{Generic, "SELECT 1 # comment\n; DELETE FROM t", "read delete(t)"},
	{Generic, "SELECT 'a\\'; DELETE FROM t; -- '", "read delete(t)"},

	// More real-world forms.
	{Postgres, "INSERT INTO events (id, payload) SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM events WHERE id = $1) RETURNING id", "read insert(events cols=id,payload returning) args=2"},
	{Postgres, "WITH src AS (SELECT * FROM staging) MERGE INTO t USING src ON src.id = t.id WHEN MATCHED THEN UPDATE SET v = src.v", "read merge(t)"},
	{Postgres, "UPDATE accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1 RETURNING balance", "update(accounts where=id:[(?2)] set=balance returning) args=2"},
	{Postgres, "DELETE FROM t WHERE (a, b) IN (($1, $2), ($3, $4))", "delete(t where=a,b:[(?1,?2) (?3,?4)]) args=4"},
	{Postgres, "SELECT * FROM jobs WHERE id = $1 FOR UPDATE OF jobs SKIP LOCKED", "read locking args=1"},
	{Postgres, "INSERT INTO t (id) VALUES (1) RETURNING *; COMMIT", "insert(t cols=id values=[(1)] returning) tx(commit)"},
	{Postgres, "SET LOCAL statement_timeout = '5s'", ""},
	{Postgres, "LOCK TABLE users IN ACCESS EXCLUSIVE MODE", ""},
	{Postgres, "VACUUM (FULL, ANALYZE) users", ""},
	{Postgres, "LISTEN changes; NOTIFY changes, 'x'", ""},
	{Postgres, "ALTER TABLE t ALTER COLUMN c TYPE bigint USING c::bigint", "schema(t)"},
	{Postgres, "CREATE TABLE child (id int) INHERITS (parent)", "schema(child)"},
	{Postgres, "DROP OWNED BY app", "schema(*)"},
	{Postgres, "REASSIGN OWNED BY a TO b", "wholedb"},
	{Postgres, `UPDATE "Schema"."Table" SET x = 1 WHERE "Table"."Id" = $1`, "update(Schema.Table where=Id:[(?1)] set=x=1) args=1"},
	{Postgres, "UPDATE t SET x = 1 WHERE id = $1 AND $1 IS NOT NULL", "update(t where=id:[(?1)] set=x=1) args=1"},
	{Postgres, "SELECT 1; SELECT 2;", "read"},
	{MySQL, "DELETE FROM t1 USING t1 JOIN t2 ON t1.id = t2.id WHERE t2.flag = 1", "delete(t1)"},
	{MySQL, "INSERT INTO t (a, b) VALUES (1, 2), (3, 4) ON DUPLICATE KEY UPDATE b = b + VALUES(b)", "upsert(t cols=a,b values=[(1,2) (3,4)] set=b)"},
	{MySQL, "/*!50001 CREATE ALGORITHM=UNDEFINED */ /*!50001 VIEW `v` AS SELECT 1 AS `x` */", "implicit-commit schema(v)"},
	{MySQL, "/*!40000 ALTER TABLE `t` DISABLE KEYS */", "implicit-commit schema(t)"},
	{MySQL, "SELECT * FROM t WHERE id = ? # trailing comment", "read args=1"},
	{MySQL, "UPDATE t SET `update` = 1, `delete` = 2 WHERE `select` = 3", "update(t where=select:[(3)] set=update=1,delete=2)"},
	{MySQL, "UPDATE db.set SET x = 1 WHERE id = 2", "update(db.set where=id:[(2)] set=x=1)"},
	{MySQL, "UPDATE 1t SET x = 1", "update(1t set=x=1)"},
	{MySQL, "SELECT * FROM t WHERE name = _utf8mb4'x' COLLATE utf8mb4_bin", "read"},
	{MySQL, "HANDLER t OPEN", "read"},
	{MySQL, "OPTIMIZE TABLE t", "implicit-commit"},
	{MySQL, "REPAIR TABLE t", "wholedb"},
	{MySQL, "SELECT GET_LOCK('x', 10)", "read"},
	{MySQL, "XA COMMIT 'x'", "wholedb tx(commit)"},
	{SQLite, "INSERT INTO t (a) VALUES (@a); UPDATE t SET b = $b WHERE a = :a", "insert(t cols=a values=[(:a)]) update(t where=a:[(:a)] set=b=:b) args=3"},
	{SQLite, "DELETE FROM t WHERE rowid = ?2 AND k = ?1", "delete(t where=rowid:[(?2)] where=k:[(?1)]) args=2"},
	{SQLite, "CREATE VIRTUAL TABLE docs USING fts5(body)", "schema(docs)"},
	{SQLite, "VACUUM INTO '/tmp/backup.db'", ""},
	{SQLite, "PRAGMA optimize; PRAGMA wal_checkpoint(TRUNCATE)", "read"},
	{SQLite, "PRAGMA journal_mode = WAL", "wholedb"},
	{SQLite, "UPDATE t SET x = 1 WHERE id = 1 LIMIT 1", "update(t where=id:[(1)] set=x=1)"},
	{SQLite, "INSERT INTO 'users' (id) VALUES (1)", "insert(users cols=id values=[(1)])"},
	{SQLite, "UPDATE t SET x = 1 WHERE id = 'a' || 'b'", "update(t set=x=1)"},
	{Generic, "DELETE FROM [Order Details] WHERE [OrderID] = @p1", "delete(Order Details where=OrderID:[(:p1)])"},
	{Generic, "UPDATE t SET x = $1 WHERE id = $2", "update(t where=id:[(?2)] set=x=?1) args=2"},
	{Generic, "SELECT $$; DELETE FROM t; $$", "read wholedb delete(t)"},
}

func TestClassify(t *testing.T) {
	for _, c := range corpus {
		got := Classify(c.d, c.sql).String()
		if got != c.want {
			t.Errorf("Classify(%v, %q)\n got %s\nwant %s", c.d, c.sql, got, c.want)
		}
	}
}

func TestValues(t *testing.T) {
	s := Classify(Postgres, "UPDATE t SET a = 'x''y', b = -2.5e3, c = $4, d = true WHERE id = 9223372036854775807 AND k = E'\\x41'")
	want := []Assign{
		{Column: "a", Value: Value{Literal: "x'y"}, Plain: true},
		{Column: "b", Value: Value{Literal: -2500.0}, Plain: true},
		{Column: "c", Value: Value{Arg: 4}, Plain: true},
		{Column: "d", Value: Value{Literal: true}, Plain: true},
	}
	if !reflect.DeepEqual(s.Writes[0].Set, want) {
		t.Errorf("Set = %#v; want %#v", s.Writes[0].Set, want)
	}
	where := []Cond{{Columns: []string{"id"}, Values: [][]Value{{{Literal: int64(9223372036854775807)}}}}}
	if !reflect.DeepEqual(s.Writes[0].Where, where) {
		t.Errorf("Where = %#v; want %#v", s.Writes[0].Where, where)
	}
	s = Classify(SQLite, "DELETE FROM t WHERE id = 99999999999999999999")
	if s.Writes[0].Where != nil {
		t.Errorf("an integer that overflows int64 gave %v", s.Writes[0].Where)
	}
}

func TestCacheShared(t *testing.T) {
	a := Classify(SQLite, "UPDATE shared SET x = 1")
	b := Classify(SQLite, "UPDATE shared SET x = 1")
	if a != b {
		t.Errorf("repeated Classify gave different pointers")
	}
	if c := Classify(MySQL, "UPDATE shared SET x = 1"); c == a {
		t.Errorf("dialects share a cache entry")
	}
}

func TestCacheBounded(t *testing.T) {
	var c stmtCache
	s := &Statement{}
	for i := 0; i < 3*genEntries; i++ {
		c.store(string(rune(i))+"x", s)
	}
	n := c.cur.Load().n.Load()
	if o := c.old.Load(); o != nil {
		n += o.n.Load()
	}
	if n > 2*genEntries {
		t.Errorf("cache holds %d entries; want at most %d", n, 2*genEntries)
	}
}

func TestKeywords(t *testing.T) {
	for k := kw(1); k < kwCount; k++ {
		if kwText[k] == "" || lookupKeyword(kwText[k]) != k {
			t.Errorf("keyword %d (%q) not in the table", k, kwText[k])
		}
	}
	if lookupKeyword("uPdAtE") != kwUPDATE || lookupKeyword("updates") != kwNone {
		t.Errorf("lookupKeyword is not case-insensitive or matches too much")
	}
}

// PostgreSQL's col = ANY($1) gives a condition on an array placeholder;
// anything else inside ANY gives none.
func TestAnyArray(t *testing.T) {
	for _, c := range []struct {
		d    Dialect
		sql  string
		want []Cond
	}{
		{Postgres, "UPDATE t SET a = 1 WHERE id = ANY($2)", []Cond{{Columns: []string{"id"}, Values: [][]Value{{{Arg: 2, Array: true}}}}}},
		{Postgres, "DELETE FROM t WHERE id = ANY ( $1 ) AND k = 3", []Cond{
			{Columns: []string{"id"}, Values: [][]Value{{{Arg: 1, Array: true}}}},
			{Columns: []string{"k"}, Values: [][]Value{{{Literal: int64(3)}}}},
		}},
		{Postgres, "DELETE FROM t WHERE id = ANY(@ids)", nil}, // @ is an operator in PostgreSQL
		{Postgres, "DELETE FROM t WHERE id = ANY(ARRAY[1, 2])", nil},
		{Postgres, "DELETE FROM t WHERE id = ANY(SELECT x FROM u)", nil},
		{Postgres, "DELETE FROM t WHERE id = ANY($1::bigint[])", nil},
		{Postgres, "DELETE FROM t WHERE id <> ANY($1)", nil},
		{Postgres, "DELETE FROM t WHERE id = ANY($1, $2)", nil},
		{MySQL, "DELETE FROM t WHERE id = ANY(SELECT x FROM u)", nil},
	} {
		s := Classify(c.d, c.sql)
		if len(s.Writes) != 1 {
			t.Fatalf("%q: %v", c.sql, s)
		}
		if !reflect.DeepEqual(s.Writes[0].Where, c.want) {
			t.Errorf("%q: Where = %#v; want %#v", c.sql, s.Writes[0].Where, c.want)
		}
	}
}

// Calls are what the text calls as a function; a keyword that opens a
// list or a subquery (IN (…), EXISTS (…), VALUES (…)) is not a call.
func TestCallsNotKeywords(t *testing.T) {
	for _, c := range []struct {
		d    Dialect
		sql  string
		want []string
	}{
		{MySQL, "SELECT `id`, `name` FROM `users` WHERE `id` IN (?, ?, ?)", nil},
		{Postgres, `SELECT "id" FROM "users" WHERE ("a", "b") IN (($1, $2), ($3, $4))`, nil},
		{Postgres, "SELECT * FROM t WHERE EXISTS (SELECT 1) AND x = ANY ($1) AND y IN (1)", nil},
		{SQLite, "INSERT INTO t VALUES (1), (2)", nil},
		{Postgres, "SELECT count(*), my_func(x) FROM t WHERE id IN (1)", []string{"count", "my_func"}},
		{MySQL, "SELECT `s`.`f`(1)", []string{"f"}},
		{MySQL, "SELECT LEFT(name, 2), s.in(1), INSERT('a', 1, 1, 'b') FROM t", []string{"left", "in", "insert"}},
	} {
		got := Classify(c.d, c.sql).Calls
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %q: Calls = %q; want %q", c.d, c.sql, got, c.want)
		}
	}
}

// Names hold every name the text mentions, wherever it stands, with
// qualified names also as pairs; Operators the runs of operator tokens;
// Use a change of the current database.
func TestNamesOperatorsUse(t *testing.T) {
	st := Classify(MySQL, "SELECT v.a, `Other`.`View`.b FROM otherdb.v JOIN `Other`.`View` WHERE x IN (SELECT y FROM z)")
	for _, n := range []string{"v", "a", "other", "view", "other.view", "otherdb", "otherdb.v", "b", "x", "y", "z", "v.a"} {
		if !slices.Contains(st.Names, n) {
			t.Errorf("Names %q lack %q", st.Names, n)
		}
	}
	for _, n := range []string{"select", "from", "join", "where", "in"} {
		if slices.Contains(st.Names, n) {
			t.Errorf("Names %q hold the keyword %q", st.Names, n)
		}
	}
	if st.Use {
		t.Error("Use set without USE")
	}
	if !Classify(MySQL, "USE other; UPDATE t SET x = 1").Use {
		t.Error("USE not reported")
	}
	ops := Classify(Postgres, "SELECT 3::bigint ### 0::bigint, a OPERATOR(s.@@) b").Operators
	for _, op := range []string{"###", "@@"} {
		found := false
		for _, run := range ops {
			found = found || strings.Contains(run, op)
		}
		if !found {
			t.Errorf("Operators %q lack %q", ops, op)
		}
	}
}

// TestPromotedTextIsCloned: a text found in the old generation is kept in
// the current one under a copy, as a new text is, never under the caller's
// string, which may be a slice of a much larger one (a script, a buffer)
// that the cache would then keep alive.
func TestPromotedTextIsCloned(t *testing.T) {
	var c stmtCache
	const text = "SELECT 1"
	c.miss(Generic, text) // classified and stored under a clone
	c.old.Store(c.cur.Load())
	c.cur.Store(new(generation))

	big := strings.Repeat(" ", 1<<20) + text
	sub := big[len(big)-len(text):]
	c.miss(Generic, sub) // found in the old generation: moves to the current one
	found := false
	c.cur.Load().m.Range(func(k, _ any) bool {
		if k.(string) == text {
			found = true
			if unsafe.StringData(k.(string)) == unsafe.StringData(sub) {
				t.Error("the promoted text is kept under the caller's string, which holds its 1 MiB buffer")
			}
		}
		return true
	})
	if !found {
		t.Fatal("the text did not move into the current generation")
	}
}
