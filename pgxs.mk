# PGXS install of the extension: `make install` copies this to build/Makefile and runs it there.
EXTENSION = eventstore
DATA = eventstore--$(VERSION).sql
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
