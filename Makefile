# oomguard.memory: the two commands of the quick start, and the parts of `make test`.
#   make run          report this host's OOM history and memory state (changes nothing)
#   make run APPLY=1  also apply the prevention settings of playbooks/harden.yml (changes the host)
#   make test         everything CI runs: lint, sanity (oldest and newest ansible-core), unit,
#                     build + install + ansible-doc, galaxy-importer on the tarball, promtool
#                     (alert rules and metrics), integration, molecule (VM + container fleet)
#   make readmes      regenerate the variables part of every roles/*/README.md from its argument specs
#   make molecule     molecule test --all (one scenario: make molecule SCENARIO=swap)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV      := .venv
VENV_216  := .venv-2.16
VENV_IMP  := .venv-importer
PY        := $(VENV)/bin/python
COLL_DIR  := $(CURDIR)/.collections
BUILD_DIR := $(CURDIR)/build
VERSION   := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL   := $(BUILD_DIR)/oomguard-memory-$(VERSION).tar.gz
export ANSIBLE_COLLECTIONS_PATH := $(COLL_DIR)
export ANSIBLE_PYTHON_INTERPRETER ?= /usr/bin/python3
export ANSIBLE_LOCALHOST_WARNING := false
export ANSIBLE_INVENTORY_UNPARSED_WARNING := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Nothing in the user's home: Ansible's own state (tmp, galaxy cache, roles, collections found by
# ansible-lint) and the caches of pip and ansible-lint live under .cache/ of this checkout.
export ANSIBLE_HOME := $(CURDIR)/.cache/ansible-home
export XDG_CACHE_HOME := $(CURDIR)/.cache/xdg

.PHONY: help run test venv install unit sanity sanity-newest sanity-2.16 lint docs importer readmes promtool integration molecule bench clean

help:
	@sed -n 's/^#  //p' Makefile

$(VENV)/.done: requirements/dev.txt scripts/find-python
	rm -rf $(VENV)
	"$$(scripts/find-python)" -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/dev.txt
	$(PY) -c 'import ansible, pytest, pytest_ansible, ansiblelint'
	touch $@

$(VENV_216)/.done: requirements/core-2.16.txt scripts/find-python
	rm -rf $(VENV_216)
	"$$(scripts/find-python 312)" -m venv $(VENV_216)
	$(VENV_216)/bin/python -m pip install -q --upgrade pip
	$(VENV_216)/bin/python -m pip install -q -r requirements/core-2.16.txt
	$(VENV_216)/bin/ansible-test --version
	touch $@

# galaxy-importer caps ansible-lint, attrs and packaging below the main venv's pins: its own venv.
$(VENV_IMP)/.done: requirements/importer.txt scripts/find-python
	rm -rf $(VENV_IMP)
	"$$(scripts/find-python)" -m venv $(VENV_IMP)
	$(VENV_IMP)/bin/python -m pip install -q --upgrade pip
	$(VENV_IMP)/bin/python -m pip install -q -r requirements/importer.txt
	touch $@

venv: $(VENV)/.done

# Build the collection tarball and install it into the project-local collections path.
install: venv
	rm -rf $(BUILD_DIR) $(COLL_DIR)/ansible_collections/oomguard
	$(VENV)/bin/ansible-galaxy collection build --output-path $(BUILD_DIR) . >/dev/null
	$(VENV)/bin/ansible-galaxy collection install --force -p $(COLL_DIR) $(TARBALL) >/dev/null
	@echo "installed $(notdir $(TARBALL)) into $(COLL_DIR)"

run: install
	$(VENV)/bin/ansible-playbook -i playbooks/inventory.ini playbooks/oom_report.yml -e oom_report_fail_on=never
	@if [ -n "$${APPLY:-}" ]; then $(VENV)/bin/ansible-playbook -i playbooks/inventory.ini playbooks/harden.yml; fi

unit: venv
	$(VENV)/bin/pytest tests/unit

lint: venv
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ansible-lint --profile production --strict
	rm -rf collections  # ansible-lint links the collection there; nothing else should find it
	$(VENV)/bin/antsibull-changelog lint
	$(PY) scripts/role_readme.py --check

readmes: venv
	$(PY) scripts/role_readme.py

sanity: sanity-newest sanity-2.16

sanity-newest: venv
	scripts/sanity $(VENV)

sanity-2.16: $(VENV_216)/.done
	scripts/sanity $(VENV_216)

# The built tarball installs, and every module and role renders with ansible-doc.
docs: install
	scripts/check-docs $(VENV) $(COLL_DIR)

# The built tarball as Galaxy and Automation Hub check it on upload (offline, ansible-test step off).
importer: install $(VENV_IMP)/.done
	scripts/galaxy-import $(VENV_IMP) $(TARBALL)

# The monitor role's alert rules and metrics, checked and tested with promtool (installed when missing).
promtool: venv
	scripts/promtool-checks $(VENV)

integration: install
	$(VENV)/bin/pytest tests/integration

# The VM and the containers of tests/testbed/ (started once by the default scenario, stopped at
# the end); molecule's and Ansible's caches stay in the project, not in $HOME. Host state: runs
# under the same lock as the integration tests when another run holds it.
MOLECULE_ENV := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ANSIBLE_HOME="$(CURDIR)/.cache/ansible-home" \
	ANSIBLE_LOCAL_TEMP="$(CURDIR)/.cache/ansible-tmp" XDG_CACHE_HOME="$(CURDIR)/.cache/xdg"
# The oldest supported ansible-core (2.16) runs the harden scenario again on the same fleet: its
# ansible-playbook comes first on PATH; containers.podman comes from the newest venv's ansible.
MOLECULE_216_ENV := $(MOLECULE_ENV) PATH="$(CURDIR)/$(VENV_216)/bin:$(CURDIR)/$(VENV)/bin:$$PATH" \
	ANSIBLE_HOME="$(CURDIR)/.cache/ansible-home-2.16" \
	ANSIBLE_COLLECTIONS_PATH="$(COLL_DIR):$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
molecule: install $(VENV_216)/.done
	rm -rf .cache/ansible-home/tmp/molecule.* .cache/ansible-home-2.16/tmp/molecule.*  # a stopped run's state: "created"
	$(MOLECULE_ENV) OOMGUARD_TESTBED_KEEP=1 molecule test $(if $(SCENARIO),-s $(SCENARIO),--all) \
		|| { tests/testbed/fleet.sh stop; exit 1; }
	@if [ -z "$(SCENARIO)" ]; then set -x; $(MOLECULE_216_ENV) molecule test -s harden; else tests/testbed/fleet.sh stop; fi

test: lint sanity unit docs importer promtool integration molecule

bench: install
	$(PY) bench/oom_facts.py
	$(PY) bench/oom_facts_journal.py
	$(PY) bench/swap_role.py
	$(PY) bench/monitor_collector.py
	$(PY) bench/oom_report.py

clean:
	rm -rf $(VENV) $(VENV_216) $(VENV_IMP) $(BUILD_DIR) $(COLL_DIR) .cache tests/output
