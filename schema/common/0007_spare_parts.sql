-- Query projections of spare parts and requisitions, rewritten in the same
-- transaction as the document, like the other kinds. A part's stock is the
-- sum of its movements as read from the document; `total` and
-- `below_minimum` hold that sum and its comparison with `min_stock`, so the
-- list can filter on them. `search` is the part number, name, maker and
-- maker's reference in lower case, for the list's search box. `json` is the
-- whole record as the API returns it.

CREATE TABLE parts (
    id            TEXT PRIMARY KEY REFERENCES records(id),
    vessel_id     TEXT NOT NULL,
    number        TEXT NOT NULL,
    name          TEXT NOT NULL,
    total         REAL NOT NULL,
    min_stock     REAL NOT NULL,
    below_minimum INTEGER NOT NULL,   -- 1 when total < min_stock
    search        TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    json          TEXT NOT NULL
) STRICT;
CREATE INDEX parts_vessel_number ON parts(vessel_id, number);
CREATE INDEX parts_below_minimum ON parts(vessel_id) WHERE below_minimum = 1;

CREATE TABLE requisitions (
    id            TEXT PRIMARY KEY REFERENCES records(id),
    vessel_id     TEXT NOT NULL,
    status        TEXT NOT NULL,      -- draft or submitted
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    json          TEXT NOT NULL
) STRICT;
CREATE INDEX requisitions_vessel ON requisitions(vessel_id, updated_at_ms);
