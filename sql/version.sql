-- Record the installed version; @VERSION@ is replaced by the build from VERSION.
INSERT INTO eventstore.schema_migrations (version) VALUES ('@VERSION@');
