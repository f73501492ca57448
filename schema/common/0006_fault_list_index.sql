-- The fault list's filters and its count read this index alone: status,
-- severity and the searched texts sit beside the (vessel, updated) order, so
-- a filtered page or a count never reads the documents' JSON.
CREATE INDEX faults_list ON faults(
    vessel_id, updated_at_ms DESC, id, status, severity, title, equipment, reporter
);
