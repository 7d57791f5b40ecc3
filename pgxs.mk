# PGXS install of the extension: `make install` copies this to build/Makefile and runs it there.
EXTENSION = eventstore
# This version's script, and the earlier versions' scripts and the upgrade
# scripts from migrations/, so that ALTER EXTENSION eventstore UPDATE works.
DATA = $(sort eventstore--$(VERSION).sql $(wildcard eventstore--*.sql))
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
