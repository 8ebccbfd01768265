//! The SQL engine core (parser → binder → optimizer → executor) over a small in-memory
//! storage, without processes: fast checks of planning and evaluation. Expected results were
//! produced by running the same statements on PostgreSQL 15.

use rxc_common::sql::binder;
use rxc_common::sql::catalog::{Catalog, Table};
use rxc_common::sql::ddl;
use rxc_common::sql::error::Result;
use rxc_common::sql::exec::{self, Row, RowId, Storage, WriteOutcome};
use rxc_common::sql::parser::{self, Statement};
use rxc_common::sql::plan::RowLock;
use rxc_common::sql::Value;
use sqlparser::ast;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Default)]
struct Memory {
    tables: HashMap<String, Arc<Table>>,
    rows: HashMap<u64, BTreeMap<String, (RowId, Row)>>,
    next_id: u64,
    sequences: HashMap<String, i64>,
}

fn key(id: &RowId) -> String {
    format!("{id:?}")
}

impl Catalog for Memory {
    fn table(&self, name: &str) -> Result<Option<Arc<Table>>> {
        Ok(self.tables.get(name).cloned())
    }
}

impl Storage for Memory {
    fn scan(&mut self, table: &Table) -> Result<Vec<(RowId, Row)>> {
        Ok(self
            .rows
            .entry(table.id)
            .or_default()
            .values()
            .cloned()
            .collect())
    }
    fn lookup(&mut self, table: &Table, k: &[Value]) -> Result<Option<(RowId, Row)>> {
        Ok(self
            .rows
            .entry(table.id)
            .or_default()
            .get(&key(&k.to_vec()))
            .cloned())
    }
    fn insert(&mut self, table: &Table, row: &Row) -> Result<()> {
        self.next_id += 1;
        let id: RowId = if table.primary_key.is_empty() {
            vec![Value::Int8(self.next_id as i64)]
        } else {
            table.primary_key.iter().map(|&i| row[i].clone()).collect()
        };
        let rows = self.rows.entry(table.id).or_default();
        if rows.contains_key(&key(&id)) {
            return Err(rxc_common::sqlerr!(
                UNIQUE_VIOLATION,
                "duplicate key value violates unique constraint \"{}_pkey\"",
                table.name
            ));
        }
        rows.insert(key(&id), (id, row.clone()));
        Ok(())
    }
    fn update(&mut self, table: &Table, id: &RowId, old: &Row, new: &Row) -> Result<WriteOutcome> {
        self.delete(table, id, old)?;
        if table.primary_key.is_empty() {
            self.rows
                .entry(table.id)
                .or_default()
                .insert(key(id), (id.clone(), new.clone()));
            Ok(WriteOutcome::Done)
        } else {
            self.insert(table, new).map(|_| WriteOutcome::Done)
        }
    }
    fn delete(&mut self, table: &Table, id: &RowId, _old: &Row) -> Result<WriteOutcome> {
        Ok(
            match self.rows.entry(table.id).or_default().remove(&key(id)) {
                Some(_) => WriteOutcome::Done,
                None => WriteOutcome::Gone,
            },
        )
    }
    fn lock(&mut self, _: &Table, _: &RowId, _: RowLock) -> Result<WriteOutcome> {
        Ok(WriteOutcome::Done)
    }
    fn nextval(&mut self, sequence: &str) -> Result<i64> {
        let v = self.sequences.entry(sequence.to_string()).or_insert(0);
        *v += 1;
        Ok(*v)
    }
}

impl Memory {
    /// Runs `sql`; returns rows as text lines `a|b|c` (NULL as empty), or `ERROR <code>`.
    fn run(&mut self, sql: &str) -> Vec<String> {
        let mut out = Vec::new();
        for stmt in match parser::parse(sql) {
            Ok(s) => s,
            Err(e) => return vec![format!("ERROR {}", e.code)],
        } {
            let Statement::Sql(ast) = stmt else { continue };
            let result = match &*ast {
                ast::Statement::CreateTable(ct) => ddl::create_table(ct).map(|def| {
                    let mut t = def.table;
                    self.next_id += 1;
                    t.id = self.next_id;
                    self.tables.insert(t.name.clone(), Arc::new(t));
                    vec![]
                }),
                other => binder::bind(self, other, &[]).and_then(|bound| {
                    exec::execute(&bound, &[], self).map(|o| {
                        o.rows
                            .iter()
                            .map(|r| {
                                r.iter()
                                    .map(|v| v.to_text().unwrap_or_default())
                                    .collect::<Vec<_>>()
                                    .join("|")
                            })
                            .collect()
                    })
                }),
            };
            match result {
                Ok(rows) => out.extend(rows),
                Err(e) => return vec![format!("ERROR {} {}", e.code, e.message)],
            }
        }
        out
    }
}

fn check(db: &mut Memory, sql: &str, expected: &[&str]) {
    let got = db.run(sql);
    assert_eq!(got, expected, "{sql}");
}

fn setup() -> Memory {
    let mut db = Memory::default();
    db.run(
        "CREATE TABLE emp (id int PRIMARY KEY, name text NOT NULL, dept int, salary numeric(10,2));
         CREATE TABLE dept (id int PRIMARY KEY, title varchar(20));
         INSERT INTO dept VALUES (1, 'eng'), (2, 'ops'), (3, 'empty');
         INSERT INTO emp VALUES (1, 'ann', 1, 100.5), (2, 'bob', 1, 90), (3, 'cy', 2, 70), (4, 'di', NULL, 50);",
    );
    db
}

#[test]
fn selects_filters_and_ordering() {
    let mut db = setup();
    check(
        &mut db,
        "SELECT name FROM emp WHERE salary > 60 ORDER BY salary DESC",
        &["ann", "bob", "cy"],
    );
    check(&mut db, "SELECT id, name FROM emp WHERE id = 3", &["3|cy"]);
    check(
        &mut db,
        "SELECT id FROM emp WHERE id IN (4, 1, 9) ORDER BY 1",
        &["1", "4"],
    );
    check(
        &mut db,
        "SELECT dept FROM emp ORDER BY dept NULLS FIRST, id LIMIT 2 OFFSET 1",
        &["1", "1"],
    );
    check(
        &mut db,
        "SELECT DISTINCT dept FROM emp ORDER BY dept",
        &["1", "2", ""],
    );
    check(
        &mut db,
        "SELECT 1 + 2 * 3, 7 / 2, 7 % 3, -5, 'a' || 'b'",
        &["7|3|1|-5|ab"],
    );
    check(
        &mut db,
        "SELECT CASE WHEN salary > 80 THEN 'high' ELSE 'low' END FROM emp ORDER BY id",
        &["high", "high", "low", "low"],
    );
    check(
        &mut db,
        "SELECT coalesce(dept, 0), nullif(id, 1) FROM emp WHERE id IN (1, 4) ORDER BY id",
        &["1|", "0|4"],
    );
    check(
        &mut db,
        "SELECT name FROM emp WHERE name LIKE 'b%' OR dept IS NULL ORDER BY name",
        &["bob", "di"],
    );
    check(
        &mut db,
        "SELECT id FROM emp WHERE salary BETWEEN 60 AND 95 ORDER BY id",
        &["2", "3"],
    );
}

#[test]
fn aggregates_and_grouping() {
    let mut db = setup();
    check(
        &mut db,
        "SELECT count(*), count(dept), sum(salary), min(name), max(salary) FROM emp",
        &["4|3|310.50|ann|100.50"],
    );
    check(
        &mut db,
        "SELECT dept, count(*) FROM emp GROUP BY dept ORDER BY dept",
        &["1|2", "2|1", "|1"],
    );
    check(
        &mut db,
        "SELECT dept, sum(salary) FROM emp GROUP BY dept HAVING count(*) > 1",
        &["1|190.50"],
    );
    check(&mut db, "SELECT count(*) FROM emp WHERE id > 100", &["0"]);
    check(&mut db, "SELECT sum(id) FROM emp WHERE id > 100", &[""]);
    check(&mut db, "SELECT count(DISTINCT dept) FROM emp", &["2"]);
    check(&mut db, "SELECT avg(id) FROM emp", &["2.5000000000000000"]);
    let got = db.run("SELECT name, count(*) FROM emp GROUP BY dept");
    assert!(got[0].starts_with("ERROR 42803"), "{got:?}");
}

#[test]
fn joins_subqueries_and_set_operations() {
    let mut db = setup();
    check(
        &mut db,
        "SELECT e.name, d.title FROM emp e JOIN dept d ON e.dept = d.id ORDER BY e.id",
        &["ann|eng", "bob|eng", "cy|ops"],
    );
    check(
        &mut db,
        "SELECT e.name, d.title FROM emp e LEFT JOIN dept d ON e.dept = d.id ORDER BY e.id",
        &["ann|eng", "bob|eng", "cy|ops", "di|"],
    );
    check(
        &mut db,
        "SELECT d.title, e.name FROM emp e RIGHT JOIN dept d ON e.dept = d.id ORDER BY d.id, e.id",
        &["eng|ann", "eng|bob", "ops|cy", "empty|"],
    );
    check(
        &mut db,
        "SELECT count(*) FROM emp e FULL JOIN dept d ON e.dept = d.id",
        &["5"],
    );
    check(&mut db, "SELECT count(*) FROM emp, dept", &["12"]);
    check(
        &mut db,
        "SELECT title FROM dept WHERE id NOT IN (SELECT dept FROM emp WHERE dept IS NOT NULL)",
        &["empty"],
    );
    check(&mut db, "SELECT title FROM dept d WHERE EXISTS (SELECT 1 FROM emp e WHERE e.dept = d.id) ORDER BY 1", &["eng", "ops"]);
    check(
        &mut db,
        "SELECT name, (SELECT title FROM dept WHERE id = emp.dept) FROM emp ORDER BY id",
        &["ann|eng", "bob|eng", "cy|ops", "di|"],
    );
    check(
        &mut db,
        "SELECT id FROM emp UNION SELECT id FROM dept ORDER BY 1",
        &["1", "2", "3", "4"],
    );
    check(
        &mut db,
        "SELECT id FROM emp INTERSECT SELECT id FROM dept ORDER BY 1",
        &["1", "2", "3"],
    );
    check(
        &mut db,
        "SELECT id FROM emp EXCEPT SELECT id FROM dept",
        &["4"],
    );
    check(
        &mut db,
        "WITH rich AS (SELECT * FROM emp WHERE salary > 80) SELECT count(*) FROM rich",
        &["2"],
    );
    check(
        &mut db,
        "SELECT x FROM (SELECT id * 10 AS x FROM dept) s WHERE x > 10 ORDER BY x",
        &["20", "30"],
    );
    check(
        &mut db,
        "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) v(n, s) ORDER BY n DESC",
        &["2|b", "1|a"],
    );
}

#[test]
fn writes_and_errors() {
    let mut db = setup();
    check(
        &mut db,
        "UPDATE emp SET salary = salary * 2 WHERE dept = 2 RETURNING name, salary",
        &["cy|140.00"],
    );
    check(
        &mut db,
        "DELETE FROM emp WHERE dept IS NULL RETURNING id",
        &["4"],
    );
    check(
        &mut db,
        "INSERT INTO emp (id, name) VALUES (5, 'ed') RETURNING id, dept",
        &["5|"],
    );
    check(
        &mut db,
        "INSERT INTO emp SELECT id + 10, title, id, 1 FROM dept",
        &[],
    );
    check(&mut db, "SELECT count(*) FROM emp", &["7"]);
    check(
        &mut db,
        "INSERT INTO emp VALUES (1, 'dup', 1, 1) ON CONFLICT DO NOTHING",
        &[],
    );
    check(&mut db, "INSERT INTO emp VALUES (1, 'new', 1, 1) ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING name", &["new"]);
    let code =
        |db: &mut Memory, sql: &str| db.run(sql)[0].split(' ').nth(1).unwrap_or("").to_string();
    assert_eq!(
        code(&mut db, "INSERT INTO emp VALUES (1, 'x', 1, 1)"),
        "23505"
    );
    assert_eq!(code(&mut db, "INSERT INTO emp (id) VALUES (99)"), "23502");
    assert_eq!(
        code(
            &mut db,
            "INSERT INTO dept VALUES (9, 'this title is far too long')"
        ),
        "22001"
    );
    assert_eq!(code(&mut db, "SELECT * FROM missing"), "42P01");
    assert_eq!(code(&mut db, "SELECT missing FROM emp"), "42703");
    assert_eq!(code(&mut db, "SELECT id FROM emp, dept"), "42702");
    assert_eq!(code(&mut db, "SELECT 1 / 0"), "22012");
    assert_eq!(
        code(&mut db, "SELECT 32767::smallint + 1::smallint"),
        "22003"
    );
    assert_eq!(code(&mut db, "SELECT 'x'::integer"), "22P02");
    assert_eq!(code(&mut db, "SELECT name + 1 FROM emp"), "42883");
    assert_eq!(
        code(
            &mut db,
            "INSERT INTO emp (id, name) VALUES ('7'::text, 'x')"
        ),
        "42804"
    );
    assert_eq!(code(&mut db, "SELECT (SELECT id FROM emp)"), "21000");
    assert_eq!(code(&mut db, "SELECT * FROM emp WHERE 1"), "42804");
}

#[test]
fn serial_defaults_use_sequences() {
    let mut db = Memory::default();
    db.run("CREATE TABLE s (id serial PRIMARY KEY, v text DEFAULT 'none')");
    check(
        &mut db,
        "INSERT INTO s (v) VALUES ('a'), (DEFAULT) RETURNING id, v",
        &["1|a", "2|none"],
    );
}
