-- Query projections of equipment and work-order records, rewritten in the
-- same transaction as the document, like faults. `json` is the whole record
-- as the API returns it; the other columns are what lists filter and sort on.

CREATE TABLE equipment (
    id            TEXT PRIMARY KEY REFERENCES records(id),
    vessel_id     TEXT NOT NULL,
    code          TEXT NOT NULL,      -- hierarchical code, e.g. 6.1.3
    name          TEXT NOT NULL,
    level         TEXT NOT NULL,
    criticality   TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    json          TEXT NOT NULL
) STRICT;
-- Not UNIQUE: a code is unique per vessel by the rule of the one site that
-- creates equipment, and a projection must never refuse a merged document.
CREATE INDEX equipment_vessel_code ON equipment(vessel_id, code);

CREATE TABLE work_orders (
    id            TEXT PRIMARY KEY REFERENCES records(id),
    vessel_id     TEXT NOT NULL,
    equipment_id  TEXT NOT NULL,
    title         TEXT NOT NULL,
    assignee      TEXT NOT NULL,
    status        TEXT NOT NULL,      -- signed_off as soon as a sign-off exists
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    json          TEXT NOT NULL
) STRICT;
CREATE INDEX work_orders_vessel_updated ON work_orders(vessel_id, updated_at_ms DESC);
CREATE INDEX work_orders_equipment ON work_orders(equipment_id, updated_at_ms DESC);
