//! Maintenance records: automerge documents stored as opaque bytes, their
//! query projections, and the change log.
//!
//! Every write goes through [`Db::transact`], which hands a [`RecordTx`] to
//! the caller under the writer lock: the caller loads documents, changes
//! them, and writes document, projection and changes back; all of it commits
//! together or not at all.
//!
//! The store never decodes a document. The caller hands it the record as
//! read from the document ([`Record`]); the store writes the projection
//! table of that record's kind (`faults`, `equipment`, `work_orders`,
//! `counters`, `plans`, `parts` or `requisitions`).
//! Everything else (the `records` row and the change log) is one code path
//! for every kind.

use crate::{Db, StoreError, ms, now_ms};
use keelson_model::{Counter, Equipment, Fault, Part, Plan, Record, Requisition, WorkOrder};
use rusqlite::{OptionalExtension, Transaction, params};

/// Where a change was made, from this site's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Written at this site; part of its outbound lane.
    Local,
    /// Received through sync.
    Remote,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Local => "local",
            Origin::Remote => "remote",
        }
    }
}

/// One automerge change to append to the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChange {
    /// The change's hash (hex), which makes re-sent changes harmless.
    pub hash: String,
    /// The change's raw bytes.
    pub bytes: Vec<u8>,
}

/// A record's new state and the changes that led to it.
#[derive(Debug, Clone)]
pub struct RecordWrite {
    /// The vessel the record belongs to.
    pub vessel_id: String,
    /// The record kind, for example `fault`.
    pub kind: String,
    /// The whole saved document.
    pub doc: Vec<u8>,
    /// The record as read from the document, for its projection.
    pub projection: Option<Record>,
    /// The changes to append to the change log.
    pub changes: Vec<NewChange>,
    /// Where the changes were made.
    pub origin: Origin,
}

/// A stored record as [`RecordTx::load`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The vessel the record belongs to.
    pub vessel_id: String,
    /// The record kind.
    pub kind: String,
    /// The saved document.
    pub doc: Vec<u8>,
}

/// A row of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    /// Local sequence number.
    pub seq: u64,
    /// The record the change belongs to.
    pub record_id: String,
    /// The change's raw bytes.
    pub change: Vec<u8>,
}

/// Which faults to list.
#[derive(Debug, Clone, Default)]
pub struct FaultFilter {
    /// Only this vessel's faults.
    pub vessel_id: Option<String>,
    /// Only faults in this status.
    pub status: Option<String>,
    /// Only faults of this severity.
    pub severity: Option<String>,
    /// Only faults whose title, equipment, reporter or id contains this text
    /// (case-insensitive for ASCII letters).
    pub search: Option<String>,
    /// At most this many (0 means a default of 500).
    pub limit: u32,
    /// Skip this many.
    pub offset: u32,
}

impl FaultFilter {
    /// The WHERE clause and its parameters. Only the conditions in force
    /// appear in the SQL, so SQLite can walk the (vessel, updated) index
    /// instead of scanning and sorting the whole table.
    fn clause(&self) -> (String, Vec<String>) {
        let mut sql = Vec::new();
        let mut args = Vec::new();
        for (column, value) in [
            ("vessel_id", &self.vessel_id),
            ("status", &self.status),
            ("severity", &self.severity),
        ] {
            if let Some(v) = value {
                args.push(v.clone());
                sql.push(format!("{column} = ?{}", args.len()));
            }
        }
        if let Some(pattern) = like_pattern(self.search.as_deref()) {
            args.push(pattern);
            let n = args.len();
            sql.push(format!(
                "(title LIKE ?{n} ESCAPE '\\' OR equipment LIKE ?{n} ESCAPE '\\' \
                 OR reporter LIKE ?{n} ESCAPE '\\' OR id LIKE ?{n} ESCAPE '\\')"
            ));
        }
        if sql.is_empty() {
            (String::new(), args)
        } else {
            (format!("WHERE {}", sql.join(" AND ")), args)
        }
    }
}

/// The LIKE pattern (escape character `\`) that finds `search` anywhere in
/// a text, or `None` when there is nothing to search for. A `%` or `_` typed
/// by the user matches itself.
fn like_pattern(search: Option<&str>) -> Option<String> {
    let q = search.map(str::trim).filter(|q| !q.is_empty())?;
    Some(format!(
        "%{}%",
        q.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    ))
}

/// Which work orders to list.
#[derive(Debug, Clone, Default)]
pub struct WorkOrderFilter {
    /// Only this vessel's work orders.
    pub vessel_id: Option<String>,
    /// Only work orders whose title, assignee or id contains this, in any
    /// case (ASCII letters).
    pub search: Option<String>,
    /// Only work orders in this status.
    pub status: Option<String>,
    /// Only work orders on this equipment record.
    pub equipment_id: Option<String>,
    /// At most this many (0 means a default of 500).
    pub limit: u32,
    /// Skip this many.
    pub offset: u32,
}

/// Which spare parts to list.
#[derive(Debug, Clone, Default)]
pub struct PartFilter {
    /// Only this vessel's parts.
    pub vessel_id: Option<String>,
    /// Only parts whose number, name, maker or maker's reference contains
    /// this, in any case.
    pub search: Option<String>,
    /// Only parts below their minimum stock.
    pub below_minimum: bool,
    /// Only parts that fit this equipment record.
    pub equipment_id: Option<String>,
    /// At most this many (0 means a default of 500).
    pub limit: u32,
    /// Skip this many.
    pub offset: u32,
}

/// Which requisitions to list.
#[derive(Debug, Clone, Default)]
pub struct RequisitionFilter {
    /// Only this vessel's requisitions.
    pub vessel_id: Option<String>,
    /// Only requisitions in this status.
    pub status: Option<String>,
    /// At most this many (0 means a default of 500).
    pub limit: u32,
    /// Skip this many.
    pub offset: u32,
}

/// A write transaction over records, held under the store's writer lock.
pub struct RecordTx<'a> {
    pub(crate) tx: Transaction<'a>,
    pub(crate) actor: [u8; 16],
}

impl RecordTx<'_> {
    /// The automerge actor of the handle this transaction runs on.
    pub fn actor(&self) -> &[u8; 16] {
        &self.actor
    }

    /// Loads a record's stored state.
    pub fn load(&self, id: &str) -> Result<Option<StoredRecord>, StoreError> {
        Ok(self
            .tx
            .query_row(
                "SELECT vessel_id, kind, doc FROM records WHERE id = ?1",
                [id],
                |r| {
                    Ok(StoredRecord {
                        vessel_id: r.get(0)?,
                        kind: r.get(1)?,
                        doc: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// The equipment of `vessel_id` with `code`, as last projected.
    pub fn equipment_by_code(
        &self,
        vessel_id: &str,
        code: &str,
    ) -> Result<Option<Equipment>, StoreError> {
        let json: Option<String> = self
            .tx
            .query_row(
                "SELECT json FROM equipment WHERE vessel_id = ?1 AND code = ?2 ORDER BY id LIMIT 1",
                [vessel_id, code],
                |r| r.get(0),
            )
            .optional()?;
        json.map(|j| parse_json("equipment", &j)).transpose()
    }

    /// How many pieces of equipment of `vessel_id` sit below `code`.
    pub fn equipment_below(&self, vessel_id: &str, code: &str) -> Result<u64, StoreError> {
        let n: i64 = self.tx.query_row(
            "SELECT COUNT(*) FROM equipment WHERE vessel_id = ?1 AND substr(code, 1, length(?2) + 1) = ?2 || '.'",
            [vessel_id, code],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Writes a record's document and projection and appends its changes.
    /// Returns how many changes were new (a change already in the log is
    /// skipped, which makes re-sent batches harmless).
    pub fn write(&mut self, id: &str, w: &RecordWrite) -> Result<usize, StoreError> {
        let now = now_ms();
        self.tx.execute(
            "INSERT INTO records (id, vessel_id, kind, doc, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET doc = excluded.doc, updated_at_ms = excluded.updated_at_ms",
            params![id, w.vessel_id, w.kind, w.doc, now],
        )?;
        match &w.projection {
            Some(Record::Fault(f)) => self.project_fault(f)?,
            Some(Record::Equipment(e)) => self.project_equipment(e)?,
            Some(Record::WorkOrder(o)) => self.project_work_order(o)?,
            Some(Record::Counter(c)) => self.project_counter(c)?,
            Some(Record::Plan(p)) => self.project_plan(p)?,
            Some(Record::Part(p)) => self.project_part(p)?,
            Some(Record::Requisition(r)) => self.project_requisition(r)?,
            None => {}
        }
        if let Some(record) = &w.projection {
            self.project_attachments(id, &w.vessel_id, record.attachments())?;
        }
        let mut added = 0;
        for c in &w.changes {
            added += self.tx.execute(
                "INSERT OR IGNORE INTO change_log (vessel_id, record_id, origin, hash, change, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![w.vessel_id, id, w.origin.as_str(), c.hash, c.bytes, now],
            )?;
        }
        Ok(added)
    }

    fn project_fault(&mut self, f: &Fault) -> Result<(), StoreError> {
        {
            let json = serde_json::to_string(f).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            self.tx.execute(
                "INSERT INTO faults (id, vessel_id, title, equipment, severity, severity_rank, status, reporter,
                                     created_at_ms, updated_at_ms, comment_count, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT(id) DO UPDATE SET title = excluded.title, equipment = excluded.equipment,
                    severity = excluded.severity, severity_rank = excluded.severity_rank,
                    status = excluded.status, updated_at_ms = excluded.updated_at_ms,
                    comment_count = excluded.comment_count, json = excluded.json",
                params![
                    f.id,
                    f.vessel_id,
                    f.title,
                    f.equipment,
                    f.severity.as_str(),
                    f.severity as i64,
                    f.status.as_str(),
                    f.reporter,
                    ms(f.created_at),
                    ms(f.updated_at),
                    f.comments.len() as i64,
                    json
                ],
            )?;
        }
        Ok(())
    }

    fn project_equipment(&mut self, e: &Equipment) -> Result<(), StoreError> {
        let json = serde_json::to_string(e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.tx.execute(
            "INSERT INTO equipment (id, vessel_id, code, name, level, criticality, updated_at_ms, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(id) DO UPDATE SET code = excluded.code, name = excluded.name,
                level = excluded.level, criticality = excluded.criticality,
                updated_at_ms = excluded.updated_at_ms, json = excluded.json",
            params![
                e.id,
                e.vessel_id,
                e.code,
                e.name,
                e.level.as_str(),
                e.criticality.as_str(),
                ms(e.updated_at),
                json
            ],
        )?;
        Ok(())
    }

    fn project_counter(&mut self, c: &Counter) -> Result<(), StoreError> {
        let json = serde_json::to_string(c).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.tx.execute(
            "INSERT INTO counters (id, vessel_id, equipment_id, name, total, sensor_tag, updated_at_ms, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, total = excluded.total,
                sensor_tag = excluded.sensor_tag, updated_at_ms = excluded.updated_at_ms,
                json = excluded.json",
            params![
                c.id,
                c.vessel_id,
                c.equipment_id,
                c.name,
                c.total,
                c.sensor.as_ref().map(|s| s.tag.as_str()),
                ms(c.updated_at),
                json
            ],
        )?;
        Ok(())
    }

    fn project_plan(&mut self, p: &Plan) -> Result<(), StoreError> {
        let json = serde_json::to_string(p).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.tx.execute(
            "INSERT INTO plans (id, vessel_id, equipment_id, counter_id, title, updated_at_ms, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(id) DO UPDATE SET title = excluded.title,
                updated_at_ms = excluded.updated_at_ms, json = excluded.json",
            params![
                p.id,
                p.vessel_id,
                p.equipment_id,
                p.counter_id,
                p.title,
                ms(p.updated_at),
                json
            ],
        )?;
        Ok(())
    }

    fn project_part(&mut self, p: &Part) -> Result<(), StoreError> {
        let json = serde_json::to_string(p).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let search = [&p.number, &p.name, &p.maker, &p.maker_ref]
            .map(|s| s.to_lowercase())
            .join("\n");
        self.tx.execute(
            "INSERT INTO parts (id, vessel_id, number, name, total, min_stock, below_minimum,
                                search, updated_at_ms, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, total = excluded.total,
                min_stock = excluded.min_stock, below_minimum = excluded.below_minimum,
                search = excluded.search, updated_at_ms = excluded.updated_at_ms,
                json = excluded.json",
            params![
                p.id,
                p.vessel_id,
                p.number,
                p.name,
                p.total,
                p.min_stock,
                p.below_minimum,
                search,
                ms(p.updated_at),
                json
            ],
        )?;
        Ok(())
    }

    fn project_requisition(&mut self, r: &Requisition) -> Result<(), StoreError> {
        let json = serde_json::to_string(r).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.tx.execute(
            "INSERT INTO requisitions (id, vessel_id, status, created_at_ms, updated_at_ms, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(id) DO UPDATE SET status = excluded.status,
                updated_at_ms = excluded.updated_at_ms, json = excluded.json",
            params![
                r.id,
                r.vessel_id,
                r.status.as_str(),
                ms(r.created_at),
                ms(r.updated_at),
                json
            ],
        )?;
        Ok(())
    }

    /// The part of `vessel_id` numbered `number`, as last projected.
    pub fn part_by_number(
        &self,
        vessel_id: &str,
        number: &str,
    ) -> Result<Option<Part>, StoreError> {
        let json: Option<String> = self
            .tx
            .query_row(
                "SELECT json FROM parts WHERE vessel_id = ?1 AND number = ?2 ORDER BY id LIMIT 1",
                [vessel_id, number],
                |r| r.get(0),
            )
            .optional()?;
        json.map(|j| parse_json("part", &j)).transpose()
    }

    /// Every part of `vessel_id` below its minimum stock, by part number.
    pub fn parts_below_minimum(&self, vessel_id: &str) -> Result<Vec<Part>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT json FROM parts WHERE vessel_id = ?1 AND below_minimum = 1 ORDER BY number, id",
        )?;
        let rows = stmt.query_map([vessel_id], |r| r.get::<_, String>(0))?;
        rows.map(|j| parse_json("part", &j?)).collect()
    }

    /// Whether a plan has a work order that is neither signed off nor
    /// cancelled, inside the transaction.
    pub fn plan_has_open_work_order(&self, plan_id: &str) -> Result<bool, StoreError> {
        let n: i64 = self.tx.query_row(
            "SELECT COUNT(*) FROM work_orders
             WHERE plan_id = ?1 AND status NOT IN ('signed_off', 'cancelled')",
            [plan_id],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// A counter as last projected, inside the transaction.
    pub fn counter(&self, id: &str) -> Result<Option<Counter>, StoreError> {
        projected(&self.tx, "counters", "counter", id)
    }

    fn project_work_order(&mut self, o: &WorkOrder) -> Result<(), StoreError> {
        let json = serde_json::to_string(o).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.tx.execute(
            "INSERT INTO work_orders (id, vessel_id, equipment_id, title, assignee, status,
                                      created_at_ms, updated_at_ms, json, plan_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(id) DO UPDATE SET title = excluded.title, assignee = excluded.assignee,
                status = excluded.status, updated_at_ms = excluded.updated_at_ms, json = excluded.json",
            params![
                o.id,
                o.vessel_id,
                o.equipment_id,
                o.title,
                o.assignee,
                o.status.as_str(),
                ms(o.created_at),
                ms(o.updated_at),
                json,
                o.plan_id
            ],
        )?;
        Ok(())
    }
}

impl Db {
    /// Runs `f` inside one write transaction. If `f` returns an error the
    /// transaction is rolled back and nothing it wrote remains.
    pub fn transact<T, E>(&self, f: impl FnOnce(&mut RecordTx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut conn = self.writer()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let mut rtx = RecordTx {
            tx,
            actor: *self.session_actor(),
        };
        let out = f(&mut rtx)?;
        rtx.tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    /// A fault as last projected.
    pub fn fault(&self, id: &str) -> Result<Option<Fault>, StoreError> {
        let conn = self.reader()?;
        let json: Option<String> = conn
            .query_row("SELECT json FROM faults WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        json.map(|j| parse_fault(&j)).transpose()
    }

    /// A record's stored document, whatever its kind.
    pub fn record(&self, id: &str) -> Result<Option<StoredRecord>, StoreError> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                "SELECT vessel_id, kind, doc FROM records WHERE id = ?1",
                [id],
                |r| {
                    Ok(StoredRecord {
                        vessel_id: r.get(0)?,
                        kind: r.get(1)?,
                        doc: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// A piece of equipment as last projected.
    pub fn equipment(&self, id: &str) -> Result<Option<Equipment>, StoreError> {
        projected(&*self.reader()?, "equipment", "equipment", id)
    }

    /// Every piece of equipment of a vessel (or all), in tree order: each
    /// system before its children, `6.2` before `6.10`.
    pub fn list_equipment(&self, vessel_id: Option<&str>) -> Result<Vec<Equipment>, StoreError> {
        let conn = self.reader()?;
        let mut stmt =
            conn.prepare_cached("SELECT json FROM equipment WHERE (?1 IS NULL OR vessel_id = ?1)")?;
        let rows = stmt.query_map([vessel_id], |r| r.get::<_, String>(0))?;
        let mut list = rows
            .map(|j| parse_json::<Equipment>("equipment", &j?))
            .collect::<Result<Vec<_>, _>>()?;
        list.sort_by_cached_key(|e| {
            (
                keelson_model::equipment::code_sort_key(&e.code),
                e.id.clone(),
            )
        });
        Ok(list)
    }

    /// A counter as last projected.
    pub fn counter(&self, id: &str) -> Result<Option<Counter>, StoreError> {
        projected(&*self.reader()?, "counters", "counter", id)
    }

    /// Counters of a vessel (or all) and, when given, of one piece of
    /// equipment, by equipment then name.
    pub fn list_counters(
        &self,
        vessel_id: Option<&str>,
        equipment_id: Option<&str>,
    ) -> Result<Vec<Counter>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT json FROM counters
             WHERE (?1 IS NULL OR vessel_id = ?1) AND (?2 IS NULL OR equipment_id = ?2)
             ORDER BY equipment_id, name, id",
        )?;
        let rows = stmt.query_map(params![vessel_id, equipment_id], |r| r.get::<_, String>(0))?;
        rows.map(|j| parse_json("counter", &j?)).collect()
    }

    /// Counters with a sensor rule, for the agent's running-hours task.
    pub fn sensor_counters(&self) -> Result<Vec<Counter>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached("SELECT json FROM counters WHERE sensor_tag IS NOT NULL ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|j| parse_json("counter", &j?)).collect()
    }

    /// A plan as last projected.
    pub fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        projected(&*self.reader()?, "plans", "plan", id)
    }

    /// Every plan of a vessel (or all), by title. Their states depend on
    /// the time and the counters, so the caller computes and filters them.
    pub fn list_plans(&self, vessel_id: Option<&str>) -> Result<Vec<Plan>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT json FROM plans WHERE (?1 IS NULL OR vessel_id = ?1) ORDER BY title, id",
        )?;
        let rows = stmt.query_map([vessel_id], |r| r.get::<_, String>(0))?;
        rows.map(|j| parse_json("plan", &j?)).collect()
    }

    /// A work order as last projected.
    pub fn work_order(&self, id: &str) -> Result<Option<WorkOrder>, StoreError> {
        projected(&*self.reader()?, "work_orders", "work order", id)
    }

    /// Work orders, most recently changed first, and how many match in all
    /// (for paging).
    pub fn list_work_orders(
        &self,
        filter: &WorkOrderFilter,
    ) -> Result<(Vec<WorkOrder>, u64), StoreError> {
        projected_page(
            &*self.reader()?,
            ("work_orders", "work order"),
            "(?1 IS NULL OR vessel_id = ?1) AND (?2 IS NULL OR status = ?2)
               AND (?3 IS NULL OR equipment_id = ?3)
               AND (?4 IS NULL OR title LIKE ?4 ESCAPE '\\' OR assignee LIKE ?4 ESCAPE '\\'
                    OR id LIKE ?4 ESCAPE '\\')",
            "updated_at_ms DESC, id",
            &[
                &filter.vessel_id,
                &filter.status,
                &filter.equipment_id,
                &like_pattern(filter.search.as_deref()),
            ],
            (filter.limit, filter.offset),
        )
    }

    /// A spare part as last projected.
    pub fn part(&self, id: &str) -> Result<Option<Part>, StoreError> {
        projected(&*self.reader()?, "parts", "part", id)
    }

    /// Spare parts by part number, and how many match in all (for paging).
    /// The equipment filter reads each part's list of equipment from its
    /// JSON, since a part may fit several.
    pub fn list_parts(&self, filter: &PartFilter) -> Result<(Vec<Part>, u64), StoreError> {
        let search = filter.search.as_ref().map(|s| s.trim().to_lowercase());
        projected_page(
            &*self.reader()?,
            ("parts", "part"),
            "(?1 IS NULL OR vessel_id = ?1)
               AND (?2 IS NULL OR instr(search, ?2) > 0)
               AND (?3 = 0 OR below_minimum = 1)
               AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(parts.json, '$.equipment_ids') WHERE value = ?4))",
            "number, id",
            &[
                &filter.vessel_id,
                &search,
                &filter.below_minimum,
                &filter.equipment_id,
            ],
            (filter.limit, filter.offset),
        )
    }

    /// A requisition as last projected.
    pub fn requisition(&self, id: &str) -> Result<Option<Requisition>, StoreError> {
        projected(&*self.reader()?, "requisitions", "requisition", id)
    }

    /// Requisitions, most recently changed first, and how many match in all.
    pub fn list_requisitions(
        &self,
        filter: &RequisitionFilter,
    ) -> Result<(Vec<Requisition>, u64), StoreError> {
        projected_page(
            &*self.reader()?,
            ("requisitions", "requisition"),
            "(?1 IS NULL OR vessel_id = ?1) AND (?2 IS NULL OR status = ?2)",
            "updated_at_ms DESC, id",
            &[&filter.vessel_id, &filter.status],
            (filter.limit, filter.offset),
        )
    }

    /// Faults, most recently changed first.
    pub fn list_faults(&self, filter: &FaultFilter) -> Result<Vec<Fault>, StoreError> {
        let conn = self.reader()?;
        let limit = if filter.limit == 0 { 500 } else { filter.limit };
        let (clause, args) = filter.clause();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT json FROM faults {clause}
             ORDER BY updated_at_ms DESC, id LIMIT {limit} OFFSET {}",
            filter.offset
        ))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))?;
        rows.map(|j| parse_fault(&j?)).collect()
    }

    /// How many faults match `filter` (its limit and offset aside), for
    /// paging.
    pub fn count_faults(&self, filter: &FaultFilter) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        let (clause, args) = filter.clause();
        let mut stmt = conn.prepare_cached(&format!("SELECT COUNT(*) FROM faults {clause}"))?;
        let n: i64 = stmt.query_row(rusqlite::params_from_iter(args), |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Open fault counts per severity for a vessel (or all), lowest first.
    pub fn open_fault_counts(
        &self,
        vessel_id: Option<&str>,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT severity, COUNT(*) FROM faults
             WHERE (?1 IS NULL OR vessel_id = ?1) AND status NOT IN ('resolved', 'closed')
             GROUP BY severity, severity_rank ORDER BY severity_rank",
        )?;
        let rows = stmt.query_map([vessel_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// This site's own changes for `vessel_id` after `after`, in order, up
    /// to about `max_bytes` of change data (always at least one change when
    /// any is pending, so an oversized change cannot stall the lane).
    pub fn outbound_changes(
        &self,
        vessel_id: &str,
        after: u64,
        max_bytes: usize,
    ) -> Result<Vec<ChangeRow>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT seq, record_id, change FROM change_log
             WHERE vessel_id = ?1 AND origin = 'local' AND seq > ?2 ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![vessel_id, after as i64])?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while let Some(r) = rows.next()? {
            let change: Vec<u8> = r.get(2)?;
            if !out.is_empty() && bytes + change.len() > max_bytes {
                break;
            }
            bytes += change.len();
            out.push(ChangeRow {
                seq: r.get::<_, i64>(0)? as u64,
                record_id: r.get(1)?,
                change,
            });
        }
        Ok(out)
    }

    /// How many of this site's own changes for `vessel_id` lie after
    /// `after`, and their size in bytes.
    pub fn outbound_pending(&self, vessel_id: &str, after: u64) -> Result<(u64, u64), StoreError> {
        let conn = self.reader()?;
        Ok(conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(change)), 0) FROM change_log
             WHERE vessel_id = ?1 AND origin = 'local' AND seq > ?2",
            params![vessel_id, after as i64],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )?)
    }

    /// The highest sequence number of this site's own changes for `vessel_id`.
    pub fn last_outbound_seq(&self, vessel_id: &str) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        Ok(conn.query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM change_log WHERE vessel_id = ?1 AND origin = 'local'",
            [vessel_id],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Counts of documents and change-log rows, for tests and metrics.
    pub fn record_counts(&self) -> Result<(u64, u64), StoreError> {
        let conn = self.reader()?;
        let records = conn.query_row("SELECT COUNT(*) FROM records", [], |r| r.get::<_, i64>(0))?;
        let changes = conn.query_row("SELECT COUNT(*) FROM change_log", [], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok((records as u64, changes as u64))
    }
}

/// One record of the projection `table`, read back from its JSON; `what`
/// names the kind in errors.
fn projected<T: serde::de::DeserializeOwned>(
    conn: &rusqlite::Connection,
    table: &str,
    what: &str,
    id: &str,
) -> Result<Option<T>, StoreError> {
    let json: Option<String> = conn
        .prepare_cached(&format!("SELECT json FROM {table} WHERE id = ?1"))?
        .query_row([id], |r| r.get(0))
        .optional()?;
    json.map(|j| parse_json(what, &j)).transpose()
}

/// One page of the projection `table` where `conditions` hold, in
/// `order`, and how many rows match in all (for paging). The conditions'
/// parameters come first, then the page's limit and offset.
fn projected_page<T: serde::de::DeserializeOwned>(
    conn: &rusqlite::Connection,
    (table, what): (&str, &str),
    conditions: &str,
    order: &str,
    params: &[&dyn rusqlite::ToSql],
    (limit, offset): (u32, u32),
) -> Result<(Vec<T>, u64), StoreError> {
    let limit = if limit == 0 { 500 } else { limit };
    let n = params.len();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT json FROM {table} WHERE {conditions} ORDER BY {order} LIMIT ?{} OFFSET ?{}",
        n + 1,
        n + 2
    ))?;
    let mut all: Vec<&dyn rusqlite::ToSql> = params.to_vec();
    all.push(&limit);
    all.push(&offset);
    let list = stmt
        .query_map(all.as_slice(), |r| r.get::<_, String>(0))?
        .map(|j| parse_json(what, &j?))
        .collect::<Result<Vec<_>, _>>()?;
    let total: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM {table} WHERE {conditions}"))?
        .query_row(params, |r| r.get(0))?;
    Ok((list, total as u64))
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("{what} projection: {e}")))
}

fn parse_fault(json: &str) -> Result<Fault, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("fault projection: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Site, test_util::open};
    use keelson_model::{Severity, Status};

    fn fault(id: &str) -> Fault {
        let now = chrono::Utc::now();
        Fault {
            id: id.into(),
            vessel_id: "v1".into(),
            title: "Leak".into(),
            description: String::new(),
            equipment: "ME".into(),
            severity: Severity::High,
            status: Status::Open,
            cause: String::new(),
            corrective_action: String::new(),
            reporter: "crew1".into(),
            created_at: now,
            updated_at: now,
            comments: vec![],
            attachments: vec![],
        }
    }

    fn write(id: &str, hash: &str) -> RecordWrite {
        RecordWrite {
            vessel_id: "v1".into(),
            kind: "fault".into(),
            doc: vec![1, 2, 3],
            projection: Some(Record::Fault(fault(id))),
            changes: vec![NewChange {
                hash: hash.into(),
                bytes: vec![9; 10],
            }],
            origin: Origin::Local,
        }
    }

    #[test]
    fn document_projection_and_change_commit_together() {
        let (_dir, db) = open(Site::Edge);
        db.transact(|tx| tx.write("f1", &write("f1", "h1")))
            .expect("write");
        assert_eq!(
            db.fault("f1").expect("q").map(|f| f.title),
            Some("Leak".into())
        );
        assert_eq!(db.record_counts().expect("q"), (1, 1));
        // A failing closure leaves nothing behind.
        let r: Result<(), StoreError> = db.transact(|tx| {
            tx.write("f2", &write("f2", "h2"))?;
            Err(StoreError::Conflict("refused".into()))
        });
        assert!(r.is_err());
        assert_eq!(db.fault("f2").expect("q"), None);
        assert_eq!(db.record_counts().expect("q"), (1, 1));
    }

    fn equipment(id: &str, code: &str) -> Equipment {
        let now = chrono::Utc::now();
        Equipment {
            id: id.into(),
            vessel_id: "v1".into(),
            code: code.into(),
            parent_code: keelson_model::equipment::parent_code(code).map(str::to_owned),
            name: format!("Equipment {code}"),
            level: keelson_model::Level::System,
            criticality: keelson_model::Criticality::Normal,
            maker: String::new(),
            model: String::new(),
            serial: String::new(),
            tags: vec![],
            created_by: "chief".into(),
            created_at: now,
            updated_at: now,
        }
    }

    fn work_order(id: &str, equipment_id: &str, status: keelson_model::WorkStatus) -> WorkOrder {
        let now = chrono::Utc::now();
        WorkOrder {
            id: id.into(),
            vessel_id: "v1".into(),
            title: format!("Job {id}"),
            equipment_id: equipment_id.into(),
            plan_id: None,
            description: String::new(),
            assignee: String::new(),
            status,
            work_done: String::new(),
            hours_spent: 0.0,
            entries: vec![],
            sign_offs: vec![],
            created_by: "second".into(),
            created_at: now,
            updated_at: now,
            comments: vec![],
            attachments: vec![],
        }
    }

    fn put(db: &crate::Db, id: &str, record: Record) {
        let w = RecordWrite {
            vessel_id: "v1".into(),
            kind: record.kind().into(),
            doc: vec![1],
            projection: Some(record),
            changes: vec![],
            origin: Origin::Local,
        };
        db.transact(|tx| tx.write(id, &w)).expect("write");
    }

    #[test]
    fn equipment_lists_in_tree_order_and_work_orders_filter_and_page() {
        use keelson_model::WorkStatus::{Done, Open};
        let (_dir, db) = open(Site::Edge);
        for (id, code) in [("a", "6.10"), ("b", "6"), ("c", "6.2"), ("d", "10")] {
            put(&db, id, Record::Equipment(equipment(id, code)));
        }
        let codes: Vec<String> = db
            .list_equipment(Some("v1"))
            .expect("q")
            .into_iter()
            .map(|e| e.code)
            .collect();
        assert_eq!(codes, ["6", "6.2", "6.10", "10"]);
        db.transact(|tx| {
            assert_eq!(
                tx.equipment_by_code("v1", "6.2")?.map(|e| e.id),
                Some("c".into())
            );
            assert_eq!(tx.equipment_below("v1", "6")?, 2);
            assert_eq!(tx.equipment_below("v1", "1")?, 0);
            Ok::<_, StoreError>(())
        })
        .expect("tx");

        for i in 0..5 {
            let status = if i % 2 == 0 { Open } else { Done };
            let id = format!("w{i}");
            put(&db, &id, Record::WorkOrder(work_order(&id, "b", status)));
        }
        put(&db, "w9", Record::WorkOrder(work_order("w9", "c", Open)));
        let filter =
            |status: Option<&str>, equipment: Option<&str>, limit, offset| WorkOrderFilter {
                vessel_id: Some("v1".into()),
                status: status.map(str::to_owned),
                equipment_id: equipment.map(str::to_owned),
                limit,
                offset,
                ..WorkOrderFilter::default()
            };
        let (page, total) = db.list_work_orders(&filter(None, None, 4, 0)).expect("q");
        assert_eq!((page.len(), total), (4, 6));
        let (page, _) = db.list_work_orders(&filter(None, None, 4, 4)).expect("q");
        assert_eq!(page.len(), 2);
        let (page, total) = db
            .list_work_orders(&filter(Some("open"), Some("b"), 0, 0))
            .expect("q");
        assert_eq!((page.len(), total), (3, 3));
        // The search finds text in the title (any case) or the id, and a
        // `%` typed by the user matches only itself.
        let search = |q: &str| WorkOrderFilter {
            search: Some(q.into()),
            ..filter(None, None, 0, 0)
        };
        let (page, _) = db.list_work_orders(&search("job W9")).expect("q");
        assert_eq!(
            page.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(),
            ["w9"]
        );
        assert_eq!(db.list_work_orders(&search("JOB")).expect("q").1, 6);
        assert_eq!(db.list_work_orders(&search("%")).expect("q").1, 0);
        assert_eq!(db.list_work_orders(&search("  ")).expect("q").1, 6);
        assert_eq!(
            db.work_order("w9").expect("q").map(|w| w.equipment_id),
            Some("c".into())
        );
    }

    #[test]
    fn duplicate_changes_are_stored_once_and_lane_reads_in_order() {
        let (_dir, db) = open(Site::Edge);
        db.transact(|tx| tx.write("f1", &write("f1", "h1")))
            .expect("write");
        let added = db
            .transact(|tx| tx.write("f1", &write("f1", "h1")))
            .expect("write");
        assert_eq!(added, 0);
        db.transact(|tx| tx.write("f1", &write("f1", "h2")))
            .expect("write");
        let rows = db.outbound_changes("v1", 0, 1).expect("q");
        assert_eq!(
            rows.len(),
            1,
            "at least one change even over the byte budget"
        );
        let rows = db.outbound_changes("v1", 0, 1 << 20).expect("q");
        // Sequence numbers increase but need not be dense: an ignored
        // duplicate may use one up.
        assert_eq!(rows.len(), 2);
        assert!(rows[0].seq < rows[1].seq);
        assert_eq!(db.outbound_pending("v1", rows[0].seq).expect("q"), (1, 10));
        assert_eq!(db.last_outbound_seq("v1").expect("q"), rows[1].seq);
    }
}
