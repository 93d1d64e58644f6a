"""Check a junit.xml against the JUnit schema CI systems read, with the standard library only.

The rules are those of Jenkins' junit-10.xsd (jenkinsci/xunit-plugin, the schema Jenkins and
the GitLab/GitHub JUnit readers accept): element names, required and allowed attributes, allowed
children, the SUREFIRE_TIME pattern of ``time``; plus the stricter Apache Ant layout
(windyroad JUnit.xsd) where the two agree: a test case holds at most one failure or error,
a suite lists properties, then test cases, then system-out and system-err. On top, the counts
(tests, failures, errors, skipped) must match the elements, which no XSD can say.

    problems = check(text)     # [] when valid, else one sentence per problem
"""
import re
import xml.etree.ElementTree as ET

TIME_RE = re.compile(r'^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?$')
SUITES_ATTRS = {'name', 'time', 'tests', 'failures', 'errors'}
SUITE_REQUIRED = {'name', 'tests', 'failures', 'errors'}
SUITE_ATTRS = SUITE_REQUIRED | {'group', 'time', 'skipped', 'timestamp', 'hostname', 'id', 'package', 'file',
                                'log', 'url'}
SUITE_CHILDREN = ('properties', 'testcase', 'system-out', 'system-err')  # in this order (Ant)
CASE_ATTRS = {'name', 'time', 'classname', 'group'}
CASE_CHILDREN = {'skipped', 'error', 'failure', 'rerunFailure', 'rerunError', 'flakyFailure', 'flakyError',
                 'system-out', 'system-err'}
RESULT_ATTRS = {'type', 'message'}
INT_ATTRS = ('tests', 'failures', 'errors', 'skipped')


def _attrs(el, allowed, required, where, problems):
    for name in el.attrib:
        if name not in allowed:
            problems.append('%s: attribute %r is not in the schema' % (where, name))
    for name in required:
        if name not in el.attrib:
            problems.append('%s: required attribute %r is missing' % (where, name))
    for name in INT_ATTRS:
        if name in el.attrib and name in allowed and not el.attrib[name].isdigit():
            problems.append('%s: %s=%r is not a count' % (where, name, el.attrib[name]))
    if 'time' in el.attrib and not TIME_RE.match(el.attrib['time']):
        problems.append('%s: time=%r does not match SUREFIRE_TIME' % (where, el.attrib['time']))


def _leaf(el, where, problems, allowed=frozenset()):
    _attrs(el, allowed, (), where, problems)
    for child in el:
        problems.append('%s: <%s> may hold only text, found <%s>' % (where, el.tag, child.tag))


def check(text):
    problems = []
    try:
        root = ET.fromstring(text.encode('utf-8') if isinstance(text, str) else text)
    except ET.ParseError as exc:
        return ['not well-formed XML: %s' % exc]
    if root.tag != 'testsuites':
        return ['the root element is <%s>, not <testsuites>' % root.tag]
    _attrs(root, SUITES_ATTRS, (), 'testsuites', problems)
    totals = {'tests': 0, 'failures': 0, 'errors': 0}
    for suite in root:
        if suite.tag != 'testsuite':
            problems.append('testsuites: child <%s> is not allowed' % suite.tag)
            continue
        where = 'testsuite %r' % suite.get('name')
        _attrs(suite, SUITE_ATTRS, SUITE_REQUIRED, where, problems)
        order = -1
        counts = {'tests': 0, 'failures': 0, 'errors': 0, 'skipped': 0}
        for child in suite:
            if child.tag not in SUITE_CHILDREN:
                problems.append('%s: child <%s> is not allowed' % (where, child.tag))
                continue
            position = SUITE_CHILDREN.index(child.tag)
            if position < order or (position == order and child.tag in ('properties', 'system-out', 'system-err')):
                problems.append('%s: <%s> out of order (properties, testcase*, system-out, system-err)'
                                % (where, child.tag))
            order = position
            if child.tag == 'properties':
                _attrs(child, set(), (), where + ' properties', problems)
                for prop in child:
                    if prop.tag != 'property':
                        problems.append('%s: <properties> holds <%s>' % (where, prop.tag))
                        continue
                    _leaf(prop, where + ' property', problems, {'name', 'value'})
                    for name in ('name', 'value'):
                        if name not in prop.attrib:
                            problems.append('%s: property without %s' % (where, name))
            elif child.tag == 'testcase':
                case_where = '%s testcase %r' % (where, child.get('name'))
                _attrs(child, CASE_ATTRS, ('name',), case_where, problems)
                counts['tests'] += 1
                outcomes = [c.tag for c in child if c.tag in ('failure', 'error')]
                if len(outcomes) > 1:
                    problems.append('%s: more than one failure/error' % case_where)
                for result in child:
                    if result.tag not in CASE_CHILDREN:
                        problems.append('%s: child <%s> is not allowed' % (case_where, result.tag))
                        continue
                    allowed = RESULT_ATTRS if result.tag in ('failure', 'error', 'skipped') else set()
                    _leaf(result, '%s <%s>' % (case_where, result.tag), problems, allowed)
                    if result.tag == 'failure':
                        counts['failures'] += 1
                    elif result.tag == 'error':
                        counts['errors'] += 1
                    elif result.tag == 'skipped':
                        counts['skipped'] += 1
            else:
                _leaf(child, '%s <%s>' % (where, child.tag), problems)
        for name, value in counts.items():
            if name in suite.attrib and suite.attrib[name].isdigit() and int(suite.attrib[name]) != value:
                problems.append('%s: %s=%s but it holds %d' % (where, name, suite.attrib[name], value))
        for name in totals:
            totals[name] += counts[name]
    for name, value in totals.items():
        if name in root.attrib and root.attrib[name].isdigit() and int(root.attrib[name]) != value:
            problems.append('testsuites: %s=%s but the suites hold %d' % (name, root.attrib[name], value))
    return problems
