//! The SQL engine core (parser → binder → optimizer → executor) over a small in-memory
//! storage, without processes: fast checks of planning and evaluation. Expected results were
//! produced by running the same statements on PostgreSQL 15.

use rxc_common::sql::binder;
use rxc_common::sql::catalog::{Catalog, Index, Table};
use rxc_common::sql::ddl;
use rxc_common::sql::error::{Result, SqlError};
use rxc_common::sql::exec::{self, InsertOutcome, Row, RowId, Storage, WriteOutcome};
use rxc_common::sql::expr::SeqCall;
use rxc_common::sql::index_scan::IndexRange;
use rxc_common::sql::indexes;
use rxc_common::sql::parser::{self, Statement};
use rxc_common::sql::plan::{Arbiter, RowLock};
use rxc_common::sql::Value;
use sqlparser::ast;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
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

fn equal(a: &Value, b: &Value) -> bool {
    a.compare(b).ok().flatten() == Some(Ordering::Equal)
}

/// Whether `values` (a row's values of an index's columns) fall in `range`.
fn in_range(range: &IndexRange, values: &[Value]) -> bool {
    if !range.prefix.iter().zip(values).all(|(p, v)| equal(p, v)) {
        return false;
    }
    let Some(next) = values.get(range.prefix.len()) else {
        return true;
    };
    let within = |bound: &Bound<Value>, wanted: Ordering| match bound {
        Bound::Unbounded => true,
        Bound::Included(b) => next
            .compare(b)
            .ok()
            .flatten()
            .is_some_and(|o| o == wanted || o.is_eq()),
        Bound::Excluded(b) => next.compare(b).ok().flatten() == Some(wanted),
    };
    within(&range.lower, Ordering::Greater) && within(&range.upper, Ordering::Less)
}

impl Memory {
    fn id_of(&mut self, table: &Table, row: &Row) -> RowId {
        if table.primary_key.is_empty() {
            self.next_id += 1;
            vec![Value::Int8(self.next_id as i64)]
        } else {
            table.primary_key.iter().map(|&i| row[i].clone()).collect()
        }
    }

    /// The first uniqueness rule `row` (as row `id`) violates, `first` checked first, with
    /// the row that holds the key.
    fn violation(
        &self,
        table: &Table,
        id: &RowId,
        row: &Row,
        first: &[Arbiter],
    ) -> Option<(Arbiter, RowId)> {
        let rows = self.rows.get(&table.id)?;
        let mut rules: Vec<Arbiter> = first.to_vec();
        rules.push(Arbiter::PrimaryKey);
        rules.extend(
            table
                .indexes
                .iter()
                .filter(|i| i.unique)
                .map(|i| Arbiter::Index(i.id)),
        );
        for rule in rules {
            match rule {
                Arbiter::PrimaryKey if !table.primary_key.is_empty() => {
                    if rows.contains_key(&key(id)) {
                        return Some((rule, id.clone()));
                    }
                }
                Arbiter::PrimaryKey => {}
                Arbiter::Index(index_id) => {
                    let index = table.indexes.iter().find(|i| i.id == index_id)?;
                    let values: Vec<&Value> = index.columns.iter().map(|&c| &row[c]).collect();
                    if index.nulls_distinct && values.iter().any(|v| v.is_null()) {
                        continue;
                    }
                    for (other, other_row) in rows.values() {
                        let same = index.columns.iter().zip(&values).all(|(&c, v)| {
                            (v.is_null() && other_row[c].is_null()) || equal(&other_row[c], v)
                        });
                        if key(other) != key(id) && same {
                            return Some((rule, other.clone()));
                        }
                    }
                }
            }
        }
        None
    }

    fn unique_error(table: &Table, rule: Arbiter) -> rxc_common::sql::SqlError {
        let name = match rule {
            Arbiter::PrimaryKey => table.primary_key_name.clone().unwrap_or_default(),
            Arbiter::Index(id) => table
                .indexes
                .iter()
                .find(|i| i.id == id)
                .map(|i| i.name.clone())
                .unwrap_or_default(),
        };
        rxc_common::sqlerr!(
            UNIQUE_VIOLATION,
            "duplicate key value violates unique constraint \"{name}\""
        )
    }

    /// CREATE INDEX: the descriptor, checked for duplicates over the rows there are.
    fn create_index(&mut self, ci: &ast::CreateIndex) -> Result<Vec<String>> {
        let name = binder::object_name(&ci.table_name)?;
        let mut table = (**self.tables.get(&name).ok_or_else(|| {
            rxc_common::sqlerr!(UNDEFINED_TABLE, "relation \"{name}\" does not exist")
        })?)
        .clone();
        let names: Vec<String> = self
            .tables
            .values()
            .flat_map(|t| {
                t.relation_names()
                    .into_iter()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        let Some(mut index) =
            indexes::create_index(&table, ci, &|n| Ok(names.iter().any(|x| x == n)))?
        else {
            return Ok(vec![]);
        };
        self.next_id += 1;
        index.id = self.next_id;
        table.indexes.push(index.clone());
        let rows: Vec<(RowId, Row)> = self
            .rows
            .entry(table.id)
            .or_default()
            .values()
            .cloned()
            .collect();
        for (id, row) in &rows {
            if self
                .violation(&table, id, row, &[])
                .is_some_and(|(rule, _)| rule == Arbiter::Index(index.id))
            {
                return Err(rxc_common::sqlerr!(
                    UNIQUE_VIOLATION,
                    "could not create unique index \"{}\"",
                    index.name
                ));
            }
        }
        self.tables.insert(name, Arc::new(table));
        Ok(vec![])
    }
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
    fn index_scan(
        &mut self,
        table: &Table,
        index: &Index,
        range: &IndexRange,
    ) -> Result<Vec<(RowId, Row)>> {
        let values =
            |row: &Row| -> Vec<Value> { index.columns.iter().map(|&c| row[c].clone()).collect() };
        let mut found: Vec<(RowId, Row)> = self
            .rows
            .entry(table.id)
            .or_default()
            .values()
            .filter(|(_, row)| in_range(range, &values(row)))
            .cloned()
            .collect();
        found.sort_by(|(_, a), (_, b)| {
            let (a, b) = (values(a), values(b));
            for ((x, y), desc) in a.iter().zip(&b).zip(&index.descending) {
                let o = x.sort_cmp(y);
                if !o.is_eq() {
                    return if *desc { o.reverse() } else { o };
                }
            }
            Ordering::Equal
        });
        Ok(found)
    }
    fn insert(&mut self, table: &Table, row: &Row) -> Result<()> {
        match self.insert_or_conflict(table, row, &[], false)? {
            InsertOutcome::Inserted(_) => Ok(()),
            InsertOutcome::Conflict(_) => unreachable!("no arbiters"),
        }
    }
    fn insert_or_conflict(
        &mut self,
        table: &Table,
        row: &Row,
        arbiters: &[Arbiter],
        _lock: bool,
    ) -> Result<InsertOutcome> {
        let id = self.id_of(table, row);
        if let Some((rule, holder)) = self.violation(table, &id, row, arbiters) {
            if !arbiters.contains(&rule) {
                return Err(Memory::unique_error(table, rule));
            }
            let existing = self.rows[&table.id][&key(&holder)].clone();
            return Ok(InsertOutcome::Conflict(Some(existing)));
        }
        self.rows
            .entry(table.id)
            .or_default()
            .insert(key(&id), (id.clone(), row.clone()));
        Ok(InsertOutcome::Inserted(id))
    }
    fn update(&mut self, table: &Table, id: &RowId, _old: &Row, new: &Row) -> Result<WriteOutcome> {
        let new_id = if table.primary_key.is_empty() {
            id.clone()
        } else {
            table.primary_key.iter().map(|&i| new[i].clone()).collect()
        };
        let rows = self.rows.entry(table.id).or_default();
        let Some(old) = rows.remove(&key(id)) else {
            return Ok(WriteOutcome::Gone);
        };
        if let Some((rule, _)) = self.violation(table, &new_id, new, &[]) {
            self.rows.entry(table.id).or_default().insert(key(id), old);
            return Err(Memory::unique_error(table, rule));
        }
        self.rows
            .entry(table.id)
            .or_default()
            .insert(key(&new_id), (new_id, new.clone()));
        Ok(WriteOutcome::Done)
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
    fn sequence(&mut self, call: &SeqCall, _: &[Value]) -> Result<Value> {
        let SeqCall::Next(sequence) = call else {
            return Err(SqlError::unsupported("only nextval in these tests"));
        };
        let v = self.sequences.entry(sequence.to_string()).or_insert(0);
        *v += 1;
        Ok(Value::Int8(*v))
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
                ast::Statement::CreateIndex(ci) => self.create_index(ci),
                ast::Statement::CreateTable(ct) => {
                    ddl::create_table(ct, &|_| Ok(false)).map(|def| {
                        let mut t = def.table;
                        self.next_id += 1;
                        t.id = self.next_id;
                        for index in &mut t.indexes {
                            self.next_id += 1;
                            index.id = self.next_id;
                        }
                        self.tables.insert(t.name.clone(), Arc::new(t));
                        vec![]
                    })
                }
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

/// The EXPLAIN lines of a statement's table access (its scan or lookup node and that node's
/// details), without indentation.
fn explain(db: &mut Memory, sql: &str) -> Vec<String> {
    let statements = parser::parse(sql).unwrap();
    let Some(Statement::Sql(ast)) = statements.into_iter().next() else {
        panic!("not SQL: {sql}")
    };
    let lines = binder::bind(db, &ast, &[]).unwrap().root.explain();
    let start = lines
        .iter()
        .position(|l| l.contains("Scan ") || l.contains("Lookup on"))
        .unwrap_or_else(|| panic!("no table access in {lines:?}"));
    let node = |l: &str| l.trim_start().starts_with("->") || !l.starts_with(' ');
    let mut out = vec![lines[start]
        .trim_start()
        .trim_start_matches("->  ")
        .to_string()];
    out.extend(
        lines[start + 1..]
            .iter()
            .take_while(|l| !node(l))
            .map(|l| l.trim().to_string()),
    );
    out
}

fn indexed() -> Memory {
    let mut db = Memory::default();
    db.run(
        "CREATE TABLE t (id int PRIMARY KEY, a int, b text, c int UNIQUE);
         CREATE INDEX t_a_b ON t (a, b DESC);
         INSERT INTO t VALUES (1, 1, 'x', 10), (2, 1, 'y', 20), (3, 2, 'x', 30), (4, NULL, 'z', NULL), (5, 2, 'w', 50);",
    );
    db
}

#[test]
fn index_scans_serve_equality_prefixes_and_ranges() {
    let mut db = indexed();
    assert_eq!(
        explain(&mut db, "SELECT * FROM t WHERE a = 1"),
        [
            "Index Scan using t_a_b on t",
            "Index Cond: (a = 1)",
            "Filter: (#1 = 1)"
        ]
    );
    assert_eq!(
        explain(
            &mut db,
            "SELECT * FROM t WHERE a = 1 AND b >= 'x' AND b < 'z'"
        )[..2],
        [
            "Index Scan using t_a_b on t",
            "Index Cond: ((a = 1) AND (b >= 'x') AND (b < 'z'))"
        ]
    );
    // The unique index with every column pinned wins over a prefix of another.
    assert_eq!(
        explain(&mut db, "SELECT * FROM t WHERE a = 1 AND c = 10")[0],
        "Index Scan using t_c_key on t"
    );
    assert_eq!(
        explain(&mut db, "SELECT * FROM t WHERE 15 < c")[..2],
        ["Index Scan using t_c_key on t", "Index Cond: (c > 15)"]
    );
    assert_eq!(
        explain(&mut db, "UPDATE t SET b = 'q' WHERE c BETWEEN 10 AND 20")[..2],
        [
            "Index Scan using t_c_key on t",
            "Index Cond: ((c >= 10) AND (c <= 20))"
        ]
    );
    // The primary key comes first; what no index serves is a sequential scan.
    assert_eq!(
        explain(&mut db, "SELECT * FROM t WHERE id = 1 AND a = 1")[0],
        "Key Lookup on t (1 keys)"
    );
    for filter in ["b = 'x'", "a = 1 OR c = 10", "a + 0 = 1", "a <> 1"] {
        assert_eq!(
            explain(&mut db, &format!("SELECT * FROM t WHERE {filter}"))[0],
            "Seq Scan on t",
            "{filter}"
        );
    }
    check(
        &mut db,
        "SELECT id FROM t WHERE a = 1 ORDER BY id",
        &["1", "2"],
    );
    check(&mut db, "SELECT id FROM t WHERE a = 2 AND b > 'w'", &["3"]);
    check(
        &mut db,
        "SELECT id FROM t WHERE c >= 20 AND c < 50 ORDER BY id",
        &["2", "3"],
    );
    check(
        &mut db,
        "SELECT id FROM t WHERE c > 25.5 ORDER BY id",
        &["3", "5"],
    );
    check(&mut db, "SELECT id FROM t WHERE c = 20.5", &[]);
    check(&mut db, "SELECT id FROM t WHERE c = NULL", &[]);
    check(&mut db, "SELECT id FROM t WHERE c < NULL", &[]);
    check(
        &mut db,
        "SELECT id FROM t WHERE c <= 99999999999 ORDER BY id",
        &["1", "2", "3", "5"],
    );
    check(
        &mut db,
        "UPDATE t SET b = 'q' WHERE c BETWEEN 10 AND 20 RETURNING id",
        &["1", "2"],
    );
    check(
        &mut db,
        "DELETE FROM t WHERE a = 2 RETURNING id",
        &["3", "5"],
    );
    check(&mut db, "SELECT count(*) FROM t", &["3"]);
}

#[test]
fn unique_constraints_get_postgres_names() {
    let mut db = Memory::default();
    db.run(
        "CREATE TABLE v (a int PRIMARY KEY, b int UNIQUE, c int, UNIQUE (a), UNIQUE (b, c), UNIQUE (b, c), CONSTRAINT vc UNIQUE (c))",
    );
    let names: Vec<String> = db.tables["v"]
        .indexes
        .iter()
        .map(|i| i.name.clone())
        .collect();
    assert_eq!(names, ["v_b_key", "v_b_c_key", "vc"]);
    check(&mut db, "INSERT INTO v VALUES (1, 1, 1)", &[]);
    check(
        &mut db,
        "INSERT INTO v VALUES (2, 1, 2)",
        &["ERROR 23505 duplicate key value violates unique constraint \"v_b_key\""],
    );
    let code =
        |db: &mut Memory, sql: &str| db.run(sql)[0].split(' ').nth(1).unwrap_or("").to_string();
    assert_eq!(
        code(&mut db, "CREATE TABLE w (a int, UNIQUE (nosuch))"),
        "42703"
    );
    assert_eq!(
        code(
            &mut db,
            "CREATE TABLE w (a int, b int, CONSTRAINT w_x UNIQUE (a), CONSTRAINT w_x UNIQUE (b))"
        ),
        "42P07"
    );
}

#[test]
fn on_conflict_finds_its_arbiters_as_postgres_does() {
    let mut db = indexed();
    let code =
        |db: &mut Memory, sql: &str| db.run(sql)[0].split(' ').nth(1).unwrap_or("").to_string();
    assert_eq!(
        code(
            &mut db,
            "INSERT INTO t VALUES (9, 1, 'x', 10) ON CONFLICT (a) DO NOTHING"
        ),
        "42P10"
    );
    assert_eq!(
        code(
            &mut db,
            "INSERT INTO t VALUES (9, 1, 'x', 10) ON CONFLICT ON CONSTRAINT t_a_b DO NOTHING"
        ),
        "42704"
    );
    assert_eq!(
        code(
            &mut db,
            "INSERT INTO t VALUES (9, 1, 'x', 10) ON CONFLICT DO UPDATE SET a = 1"
        ),
        "42601"
    );
    assert_eq!(
        code(
            &mut db,
            "INSERT INTO t VALUES (9, 1, 'x', 10) ON CONFLICT (nosuch) DO NOTHING"
        ),
        "42703"
    );
    // A conflict on another unique index than the arbiter is an error.
    assert_eq!(
        code(
            &mut db,
            "INSERT INTO t VALUES (1, 1, 'x', 99) ON CONFLICT (c) DO NOTHING"
        ),
        "23505"
    );
    check(
        &mut db,
        "INSERT INTO t VALUES (9, 7, 'n', 10) ON CONFLICT (c) DO UPDATE SET b = excluded.b RETURNING id, b",
        &["1|n"],
    );
    check(
        &mut db,
        "INSERT INTO t VALUES (9, 7, 'n', 10) ON CONFLICT ON CONSTRAINT t_c_key DO NOTHING RETURNING id",
        &[],
    );
    check(
        &mut db,
        "INSERT INTO t VALUES (9, 7, 'n', 10), (8, 7, 'm', 80) ON CONFLICT DO NOTHING RETURNING id",
        &["8"],
    );
    assert_eq!(
        code(
            &mut db,
            "INSERT INTO t VALUES (6, 0, 'a', 60), (7, 0, 'b', 60) ON CONFLICT (c) DO UPDATE SET b = excluded.b"
        ),
        "21000"
    );
}

/// The whole EXPLAIN of a statement, one line per node or detail, without indentation.
fn plan_lines(db: &mut Memory, sql: &str) -> Vec<String> {
    let statements = parser::parse(sql).unwrap();
    let Some(Statement::Sql(ast)) = statements.into_iter().next() else {
        panic!("not SQL: {sql}")
    };
    let lines = binder::bind(db, &ast, &[]).unwrap().root.explain();
    lines
        .iter()
        .map(|l| l.trim().trim_start_matches("->  ").to_string())
        .collect()
}

#[test]
fn equi_joined_tables_meet_before_cross_products() {
    let mut db = Memory::default();
    db.run(
        "CREATE TABLE a (x int, p text);
         CREATE TABLE b (y int);
         CREATE TABLE c (z int, q text);
         INSERT INTO a VALUES (1, 'a1'), (2, 'a2');
         INSERT INTO b VALUES (10), (20);
         INSERT INTO c VALUES (2, 'c2'), (3, 'c3');",
    );
    let sql = "SELECT * FROM a, b, c WHERE a.x = c.z AND y > 0 ORDER BY y";
    // Columns come back in the order written, though c joins a before b does.
    check(&mut db, sql, &["2|a2|10|2|c2", "2|a2|20|2|c2"]);
    let plan = plan_lines(&mut db, sql);
    let joins = plan.iter().position(|l| l.ends_with("Join")).unwrap();
    assert_eq!(
        plan[joins..],
        [
            "Nested Loop Inner Join",
            "Hash Inner Join",
            "Seq Scan on a",
            "Seq Scan on c",
            "Seq Scan on b",
            "Filter: (#0 > 0)",
        ]
    );
    // Already grouped: the order written stays.
    let plan = plan_lines(&mut db, "SELECT * FROM a, c, b WHERE a.x = c.z");
    assert_eq!(
        plan.iter().filter(|l| *l == "Project").count(),
        1,
        "{plan:?}"
    );
    let joins = plan.iter().position(|l| l.ends_with("Join")).unwrap();
    assert_eq!(
        plan[joins..joins + 2],
        ["Nested Loop Inner Join", "Hash Inner Join"]
    );
}
