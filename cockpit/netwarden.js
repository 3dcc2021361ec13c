/* netwarden's Cockpit page.
 *
 * Everything goes through the daemon's D-Bus API (org.netwarden1 on the
 * system bus): one GetManagedObjects at start and after each of the
 * daemon's signals (NetworkEvent, NWFilterEvent, NWFilterBindingEvent,
 * InterfacesAdded/Removed, PropertiesChanged). Nothing polls.
 * Plain JavaScript, no bundler, no inline scripts or styles (Cockpit's
 * content security policy).
 */
(function () {
    "use strict";

    var BUS_NAME = "org.netwarden1";
    var ROOT = "/org/netwarden1";
    var MANAGER = "org.netwarden1.Manager";
    var NETWORK = "org.netwarden1.Network";
    var PORT = "org.netwarden1.NetworkPort";
    var FILTER = "org.netwarden1.NWFilter";
    var BINDING = "org.netwarden1.NWFilterBinding";
    var PROPS = "org.freedesktop.DBus.Properties";
    var ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied";

    var client = null;

    // What the page knows, rebuilt from the daemon.
    var state = {
        manager: {},
        networks: {}, // path → {props, xml, leases}
        ports: {}, // path → props
        filters: {}, // path → props
        bindings: {}, // path → {props, xml}
        filterXML: {} // path → XML text (cache, dropped on NWFilterEvent)
    };
    // UI state that survives re-rendering, by object name.
    var ui = {
        view: "networks",
        networkRow: {}, // name → {confirm: bool, error: string, busy: bool}
        bindingRow: {}, // port → {confirm, error}
        filter: null, // selected filter's name
        filterEditing: false,
        filterConfirm: false
    };

    /* ---- helpers ---- */

    function $(id) { return document.getElementById(id) }

    function el(tag, attrs) {
        var e = document.createElement(tag);
        var k;
        for (k in attrs || {}) {
            if (k === "text")
                e.textContent = attrs[k];
            else if (k === "className")
                e.className = attrs[k];
            else if (k.indexOf("on") === 0)
                e.addEventListener(k.slice(2), attrs[k]);
            else if (attrs[k] !== undefined && attrs[k] !== null && attrs[k] !== false)
                e.setAttribute(k, attrs[k] === true ? "" : attrs[k]);
        }
        for (var i = 2; i < arguments.length; i++) {
            var c = arguments[i];
            if (c === null || c === undefined)
                continue;
            e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
        }
        return e;
    }

    // unv unwraps Cockpit's JSON form of a D-Bus variant ({t, v}).
    function unv(x) {
        if (x && typeof x === "object" && "t" in x && "v" in x)
            return x.v;
        return x;
    }

    function unvAll(props) {
        var out = {};
        for (var k in props || {})
            out[k] = unv(props[k]);
        return out;
    }

    function call(path, iface, method, args, type) {
        var opts = type !== undefined ? { type: type } : undefined;
        return client.call(path, iface, method, args || [], opts);
    }

    // explain turns a D-Bus error into what the page shows: AccessDenied
    // as "You are not allowed to …", the daemon's own message otherwise.
    function explain(err, what) {
        if (err && err.name === ACCESS_DENIED) {
            var msg = "You are not allowed to " + what + ".";
            if (err.message)
                msg += " (" + err.message + ")";
            return msg;
        }
        if (err && err.problem === "not-found")
            return "The netwarden service is not running.";
        var text = (err && (err.message || err.problem)) || String(err);
        return "Could not " + what + ": " + text;
    }

    function showAlert(text) {
        var a = $("alert");
        a.textContent = text || "";
        a.hidden = !text;
    }

    function showError(id, text) {
        var e = $(id);
        e.textContent = text || "";
        e.hidden = !text;
    }

    function parseXML(text) {
        if (!text)
            return null;
        var doc = new DOMParser().parseFromString(text, "application/xml");
        if (doc.getElementsByTagName("parsererror").length)
            return null;
        return doc;
    }

    function byName(map) {
        return Object.keys(map).sort(function (a, b) {
            var na = (map[a].props || map[a]).Name || (map[a].props || map[a]).PortDev || a;
            var nb = (map[b].props || map[b]).Name || (map[b].props || map[b]).PortDev || b;
            return na < nb ? -1 : na > nb ? 1 : 0;
        });
    }

    function newUUID() {
        if (window.crypto && window.crypto.randomUUID)
            return window.crypto.randomUUID();
        var b = new Uint8Array(16);
        window.crypto.getRandomValues(b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1) }).join("");
        return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
    }

    function xmlEscape(s) {
        return String(s).replace(/&/g, "&amp;")
                .replace(/</g, "&lt;")
                .replace(/>/g, "&gt;")
                .replace(/'/g, "&apos;")
                .replace(/"/g, "&quot;");
    }

    /* ---- loading ---- */

    var reloading = null;
    var reloadAgain = false;

    // reload reads every object again (after a signal); overlapping
    // requests collapse into one more round.
    function reload() {
        if (reloading) {
            reloadAgain = true;
            return reloading;
        }
        reloading = load().then(function () {
            reloading = null;
            if (reloadAgain) {
                reloadAgain = false;
                return reload();
            }
        }, function (err) {
            reloading = null;
            showAlert(explain(err, "read netwarden's objects"));
        });
        return reloading;
    }

    function load() {
        return call(ROOT, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", [])
                .then(function (reply) {
                    var objects = reply[0] || {};
                    var networks = {};
                    var ports = {};
                    var filters = {};
                    var bindings = {};
                    Object.keys(objects).forEach(function (path) {
                        var ifaces = objects[path];
                        if (ifaces[NETWORK])
                            networks[path] = { props: unvAll(ifaces[NETWORK]) };
                        if (ifaces[PORT])
                            ports[path] = unvAll(ifaces[PORT]);
                        if (ifaces[FILTER])
                            filters[path] = unvAll(ifaces[FILTER]);
                        if (ifaces[BINDING])
                            bindings[path] = { props: unvAll(ifaces[BINDING]) };
                    });
                    var pending = [];
                    Object.keys(networks).forEach(function (path) {
                        var n = networks[path];
                        pending.push(call(path, NETWORK, "GetXMLDesc", [0], "u")
                                .then(function (r) { n.xml = r[0] }, function () { n.xml = null }));
                        if (n.props.Active)
                            pending.push(call(path, NETWORK, "GetDHCPLeases", ["", 0], "su")
                                    .then(function (r) { n.leases = r[0] }, function () { n.leases = [] }));
                        else
                            n.leases = [];
                    });
                    Object.keys(bindings).forEach(function (path) {
                        var b = bindings[path];
                        pending.push(call(path, BINDING, "GetXMLDesc", [0], "u")
                                .then(function (r) { b.xml = r[0] }, function () { b.xml = null }));
                    });
                    return Promise.all(pending).then(function () {
                        state.networks = networks;
                        state.ports = ports;
                        state.filters = filters;
                        state.bindings = bindings;
                        showAlert(null);
                        render();
                    });
                });
    }

    function loadManager() {
        return call(ROOT, PROPS, "GetAll", [MANAGER], "s")
                .then(function (r) {
                    state.manager = unvAll(r[0]);
                    renderStatus();
                }, function (err) {
                    showAlert(explain(err, "read the daemon's status"));
                });
    }

    /* ---- status strip ---- */

    function renderStatus() {
        var m = state.manager;
        $("status-backend").textContent = m.Backend || "—";
        var fw = $("status-firewalld");
        fw.textContent = m.FirewalldRunning ? "running" : "not running";
        fw.className = m.FirewalldRunning ? "nw-ok" : "nw-off";
        var re = $("status-reapply");
        var us = Number(m.LastFirewallReapply || 0);
        re.setAttribute("data-us", String(us));
        if (us > 0) {
            var d = new Date(us / 1000);
            re.textContent = d.toLocaleString() + "." + String(d.getMilliseconds()).padStart(3, "0");
            re.title = d.toISOString();
        } else {
            re.textContent = "never";
        }
        var restores = $("status-restores");
        restores.textContent = String(m.Restores !== undefined ? m.Restores : "—");
        restores.setAttribute("data-count", String(m.Restores));
        $("status-version").textContent = m.Version || "—";
    }

    /* ---- networks ---- */

    function networkInfo(n) {
        var info = { forward: "isolated", subnets: [] };
        var doc = parseXML(n.xml);
        if (!doc)
            return info;
        var fwd = doc.querySelector("network > forward");
        if (fwd)
            info.forward = fwd.getAttribute("mode") || "nat";
        doc.querySelectorAll("network > ip").forEach(function (ip) {
            var addr = ip.getAttribute("address");
            var prefix = ip.getAttribute("prefix");
            var mask = ip.getAttribute("netmask");
            if (!prefix && mask)
                prefix = mask.split(".").reduce(function (bits, o) {
                    return bits + (Number(o) >>> 0).toString(2).replace(/0/g, "").length;
                }, 0);
            if (addr)
                info.subnets.push(addr + (prefix ? "/" + prefix : ""));
        });
        return info;
    }

    function networkRowState(name) {
        if (!ui.networkRow[name])
            ui.networkRow[name] = {};
        return ui.networkRow[name];
    }

    function networkAction(path, name, method, what) {
        var rs = networkRowState(name);
        rs.error = null;
        rs.busy = true;
        rs.confirm = false;
        renderNetworks();
        call(path, NETWORK, method, [])
                .then(function () {
                    rs.busy = false;
                    reload();
                }, function (err) {
                    rs.busy = false;
                    rs.error = explain(err, what + " network “" + name + "”");
                    renderNetworks();
                });
    }

    function setAutostart(path, name, on) {
        var rs = networkRowState(name);
        rs.error = null;
        call(path, PROPS, "Set", [NETWORK, "Autostart", cockpit.variant("b", on)], "ssv")
                .then(function () { reload() }, function (err) {
                    rs.error = explain(err, (on ? "turn on" : "turn off") + " autostart of network “" + name + "”");
                    renderNetworks();
                });
    }

    function renderNetworks() {
        var tbody = $("networks").tBodies[0];
        tbody.textContent = "";
        var paths = byName(state.networks);
        $("networks-empty").hidden = paths.length > 0;
        paths.forEach(function (path) {
            var n = state.networks[path];
            var p = n.props;
            var name = p.Name;
            var rs = networkRowState(name);
            var info = networkInfo(n);
            var leases = el("ul", { className: "nw-leases nw-mono" });
            (n.leases || []).forEach(function (l) {
                // (iface, expirytime, type, mac, iaid, ipaddr, prefix, hostname, clientid)
                leases.appendChild(el("li", { text: l[5] + "/" + l[6] + " " + l[3] + (l[7] ? " " + l[7] : "") }));
            });
            var stateText = p.Active ? "active" : "inactive";
            var actions = el("td", { className: "nw-actions" });
            if (p.Active)
                actions.appendChild(el("button", {
                    type: "button", className: "nw-stop", disabled: rs.busy,
                    onclick: function () { networkAction(path, name, "Destroy", "stop") }
                }, "Stop"));
            else
                actions.appendChild(el("button", {
                    type: "button", className: "nw-start", disabled: rs.busy,
                    onclick: function () { networkAction(path, name, "Create", "start") }
                }, "Start"));
            if (p.Persistent) {
                if (rs.confirm) {
                    actions.appendChild(el("span", { className: "nw-confirm" },
                                           "Undefine “" + name + "”? ",
                                           el("button", {
                                               type: "button", className: "nw-danger nw-undefine-yes",
                                               onclick: function () { networkAction(path, name, "Undefine", "undefine") }
                                           }, "Undefine"),
                                           el("button", {
                                               type: "button", className: "nw-undefine-no",
                                               onclick: function () { rs.confirm = false; renderNetworks() }
                                           }, "Cancel")));
                } else {
                    actions.appendChild(el("button", {
                        type: "button", className: "nw-danger nw-undefine", disabled: rs.busy,
                        onclick: function () { rs.confirm = true; rs.error = null; renderNetworks() }
                    }, "Undefine"));
                }
            }
            if (rs.error)
                actions.appendChild(el("div", { className: "nw-row-error", text: rs.error }));
            var auto = el("input", {
                type: "checkbox", className: "nw-autostart", checked: !!p.Autostart,
                "aria-label": "Autostart " + name,
                onchange: function (ev) { setAutostart(path, name, ev.target.checked) }
            });
            auto.checked = !!p.Autostart;
            tbody.appendChild(el("tr", { "data-name": name, "data-path": path },
                                 el("td", null, el("b", { text: name }),
                                    p.Persistent ? null : el("span", { className: "nw-small", text: " transient" })),
                                 el("td", null, el("span", {
                                     className: "nw-badge nw-state" + (p.Active ? " nw-active-state" : ""),
                                     text: stateText
                                 }), p.Status ? el("div", { className: "nw-small", text: p.Status }) : null),
                                 el("td", { className: "nw-forward", text: info.forward }),
                                 el("td", { className: "nw-bridge nw-mono", text: p.Bridge || "—" }),
                                 el("td", { className: "nw-subnet nw-mono", text: info.subnets.join(", ") || "—" }),
                                 el("td", { className: "nw-leases-cell" },
                                    (n.leases || []).length ? leases : el("span", { className: "nw-small", text: p.Active ? "none" : "—" })),
                                 el("td", null, auto),
                                 actions));
        });
    }

    function defineNetwork() {
        var xml = $("network-xml").value;
        showError("network-define-error", null);
        call(ROOT, MANAGER, "NetworkDefineXML", [xml], "s")
                .then(function () {
                    $("network-xml").value = "";
                    $("network-define-box").open = false;
                    reload();
                }, function (err) {
                    showError("network-define-error", explain(err, "define the network"));
                });
    }

    /* ---- filters ---- */

    function filterPathByName(name) {
        var found = null;
        Object.keys(state.filters).forEach(function (path) {
            if (state.filters[path].Name === name)
                found = path;
        });
        return found;
    }

    function filterXML(path) {
        if (state.filterXML[path] !== undefined)
            return Promise.resolve(state.filterXML[path]);
        return call(path, FILTER, "GetXMLDesc", [0], "u").then(function (r) {
            state.filterXML[path] = r[0];
            return r[0];
        });
    }

    function renderFilters() {
        var tbody = $("filters").tBodies[0];
        tbody.textContent = "";
        byName(state.filters).forEach(function (path) {
            var f = state.filters[path];
            tbody.appendChild(el("tr", {
                "data-name": f.Name,
                className: f.Name === ui.filter ? "nw-selected" : "",
                onclick: function () { selectFilter(f.Name) }
            },
                                 el("td", null, el("b", { text: f.Name })),
                                 el("td", null, f.BuiltIn
                                     ? el("span", { className: "nw-badge nw-builtin", text: "built-in" })
                                     : el("span", { className: "nw-badge", text: "defined" })),
                                 el("td", { className: "nw-mono nw-small", text: f.UUID })));
        });
        var select = $("binding-filter");
        var chosen = select.value;
        select.textContent = "";
        byName(state.filters).forEach(function (path) {
            var name = state.filters[path].Name;
            select.appendChild(el("option", { value: name, text: name }));
        });
        if (chosen)
            select.value = chosen;
        else if (filterPathByName("clean-traffic"))
            select.value = "clean-traffic";
        renderFilterDetail();
    }

    function selectFilter(name) {
        if (ui.filter !== name) {
            ui.filterEditing = false;
            ui.filterConfirm = false;
            showError("filter-error", null);
            showError("filter-action-error", null);
        }
        ui.filter = name;
        renderFilters();
    }

    var detailSeq = 0;

    function renderFilterDetail() {
        var name = ui.filter;
        var path = name ? filterPathByName(name) : null;
        $("filter-editor").hidden = !ui.filterEditing;
        if (!path) {
            if (!ui.filterEditing || name)
                $("filter-title").textContent = name ? "Filter “" + name + "” is gone" : "Select a filter";
            $("filter-actions").hidden = true;
            $("filter-xml-view").textContent = "";
            $("filter-graph").textContent = "";
            return;
        }
        var f = state.filters[path];
        $("filter-title").textContent = f.Name;
        $("filter-actions").hidden = false;
        $("filter-undefine").hidden = !!f.BuiltIn || ui.filterConfirm;
        $("filter-confirm").hidden = !ui.filterConfirm;
        var seq = ++detailSeq;
        filterXML(path).then(function (xml) {
            if (seq !== detailSeq)
                return;
            $("filter-xml-view").textContent = xml;
            return buildGraph(name).then(function (tree) {
                if (seq === detailSeq)
                    drawGraph(tree);
            });
        }, function (err) {
            if (seq === detailSeq)
                $("filter-xml-view").textContent = explain(err, "read filter “" + name + "”");
        });
    }

    // buildGraph follows <filterref filter='…'/> from the named filter
    // down, each filter's references read from its XML.
    function buildGraph(name) {
        var seen = {};
        function node(n, depth, ancestors) {
            var path = filterPathByName(n);
            var t = { name: n, chain: "", children: [], missing: !path, cycle: ancestors.indexOf(n) >= 0 };
            if (!path || t.cycle || depth > 12)
                return Promise.resolve(t);
            seen[n] = true;
            return filterXML(path).then(function (xml) {
                var doc = parseXML(xml);
                if (!doc)
                    return t;
                var root = doc.documentElement;
                t.chain = root.getAttribute("chain") || "";
                var refs = [];
                Array.prototype.forEach.call(root.children, function (c) {
                    if (c.tagName === "filterref")
                        refs.push(c.getAttribute("filter"));
                });
                return Promise.all(refs.map(function (r) {
                    return node(r, depth + 1, ancestors.concat([n]));
                })).then(function (kids) {
                    t.children = kids;
                    return t;
                });
            }, function () { return t });
        }
        return node(name, 0, []);
    }

    var SVG = "http://www.w3.org/2000/svg";

    function svg(tag, attrs) {
        var e = document.createElementNS(SVG, tag);
        for (var k in attrs || {})
            e.setAttribute(k, attrs[k]);
        for (var i = 2; i < arguments.length; i++)
            e.appendChild(arguments[i]);
        return e;
    }

    // drawGraph draws the reference tree left to right as an inline SVG:
    // one box per filter, a line per <filterref>.
    function drawGraph(tree) {
        var W = 170;
        var H = 34;
        var GAPX = 50;
        var GAPY = 10;
        var leaves = 0;
        var maxDepth = 0;
        function place(t, depth) {
            t.depth = depth;
            maxDepth = Math.max(maxDepth, depth);
            if (!t.children.length) {
                t.y = leaves++ * (H + GAPY);
            } else {
                t.children.forEach(function (c) { place(c, depth + 1) });
                t.y = (t.children[0].y + t.children[t.children.length - 1].y) / 2;
            }
            t.x = depth * (W + GAPX);
        }
        place(tree, 0);
        var width = (maxDepth + 1) * (W + GAPX) - GAPX + 2;
        var height = Math.max(1, leaves) * (H + GAPY) - GAPY + 2;
        var root = svg("svg", {
            id: "filter-graph-svg",
            width: width,
            height: height,
            viewBox: "-1 -1 " + width + " " + height,
            role: "img",
            "aria-label": "Filters referenced by " + tree.name
        });
        var edges = svg("g");
        var nodes = svg("g");
        root.appendChild(edges);
        root.appendChild(nodes);
        var count = 0;
        function draw(t, isRoot) {
            count++;
            var cls = "nw-node" + (isRoot ? " nw-root" : "") + (t.missing ? " nw-missing" : "");
            var label = t.name + (t.cycle ? " (cycle)" : "");
            var g = svg("g", { "class": cls, "data-filter": t.name, transform: "translate(" + t.x + "," + t.y + ")" },
                        svg("rect", { width: W, height: H, rx: 4 }));
            var text = svg("text", { x: 8, y: t.chain ? 14 : 21 });
            text.textContent = label.length > 24 ? label.slice(0, 23) + "…" : label;
            g.appendChild(text);
            if (t.chain) {
                var sub = svg("text", { x: 8, y: 28, "class": "nw-chain" });
                sub.textContent = "chain " + t.chain;
                g.appendChild(sub);
            }
            var title = svg("title");
            title.textContent = label + (t.missing ? " (not defined)" : "");
            g.appendChild(title);
            nodes.appendChild(g);
            t.children.forEach(function (c) {
                var x1 = t.x + W;
                var y1 = t.y + H / 2;
                var x2 = c.x;
                var y2 = c.y + H / 2;
                var mx = (x1 + x2) / 2;
                edges.appendChild(svg("path", {
                    "class": "nw-edge",
                    d: "M" + x1 + "," + y1 + " C" + mx + "," + y1 + " " + mx + "," + y2 + " " + x2 + "," + y2
                }));
                draw(c, false);
            });
        }
        draw(tree, true);
        root.setAttribute("data-nodes", String(count));
        var box = $("filter-graph");
        box.textContent = "";
        box.appendChild(root);
        if (!tree.children.length)
            box.appendChild(el("p", { className: "nw-small", text: "This filter references no other filter." }));
    }

    function editFilter() {
        var path = filterPathByName(ui.filter);
        ui.filterEditing = true;
        $("filter-editor-title").textContent = "Edit filter";
        showError("filter-error", null);
        $("filter-xml").value = (path && state.filterXML[path]) || "";
        renderFilterDetail();
    }

    function newFilter() {
        ui.filterEditing = true;
        $("filter-editor-title").textContent = "New filter";
        showError("filter-error", null);
        $("filter-xml").value = "<filter name='my-filter' chain='root'>\n" +
            "  <filterref filter='clean-traffic'/>\n" +
            "  <rule action='accept' direction='in' priority='500'>\n" +
            "    <tcp dstportstart='22'/>\n" +
            "  </rule>\n" +
            "</filter>\n";
        renderFilterDetail();
    }

    function defineFilter() {
        var xml = $("filter-xml").value;
        var doc = parseXML(xml);
        var name = doc ? doc.documentElement.getAttribute("name") : null;
        showError("filter-error", null);
        call(ROOT, MANAGER, "NWFilterDefineXML", [xml], "s")
                .then(function () {
                    ui.filterEditing = false;
                    state.filterXML = {};
                    if (name)
                        ui.filter = name;
                    reload();
                }, function (err) {
                    showError("filter-error", explain(err, "define filter" + (name ? " “" + name + "”" : "")));
                });
    }

    function undefineFilter() {
        var name = ui.filter;
        var path = filterPathByName(name);
        ui.filterConfirm = false;
        showError("filter-action-error", null);
        if (!path)
            return;
        call(path, FILTER, "Undefine", [])
                .then(function () { reload() }, function (err) {
                    showError("filter-action-error", explain(err, "undefine filter “" + name + "”"));
                    renderFilterDetail();
                });
    }

    /* ---- bindings ---- */

    function bindingParams(b) {
        var doc = parseXML(b.xml);
        var out = [];
        if (!doc)
            return out;
        doc.querySelectorAll("filterref > parameter").forEach(function (p) {
            out.push(p.getAttribute("name") + "=" + p.getAttribute("value"));
        });
        return out;
    }

    // learned returns the binding's learned addresses when the daemon has
    // a property for them (a property whose name starts with "Learn").
    function learned(props) {
        var keys = Object.keys(props).filter(function (k) { return /^Learn/.test(k) });
        if (!keys.length)
            return null;
        var vals = [];
        keys.forEach(function (k) {
            var v = props[k];
            if (Array.isArray(v))
                v.forEach(function (x) { vals.push(Array.isArray(x) ? x.join(" ") : String(unv(x))) });
            else if (v !== "" && v !== null && v !== undefined)
                vals.push(String(v));
        });
        return vals;
    }

    function renderBindings() {
        var tbody = $("bindings").tBodies[0];
        tbody.textContent = "";
        var paths = byName(state.bindings);
        $("bindings-empty").hidden = paths.length > 0;
        paths.forEach(function (path) {
            var b = state.bindings[path];
            var p = b.props;
            var port = p.PortDev;
            if (!ui.bindingRow[port])
                ui.bindingRow[port] = {};
            var rs = ui.bindingRow[port];
            var params = bindingParams(b);
            var l = learned(p);
            var actions = el("td");
            if (rs.confirm) {
                actions.appendChild(el("span", { className: "nw-confirm" },
                                       "Delete the binding of " + port + "? ",
                                       el("button", {
                                           type: "button", className: "nw-danger nw-delete-yes",
                                           onclick: function () { deleteBinding(path, port) }
                                       }, "Delete"),
                                       el("button", {
                                           type: "button",
                                           onclick: function () { rs.confirm = false; renderBindings() }
                                       }, "Cancel")));
            } else {
                actions.appendChild(el("button", {
                    type: "button", className: "nw-danger nw-delete",
                    onclick: function () { rs.confirm = true; rs.error = null; renderBindings() }
                }, "Delete"));
            }
            if (rs.error)
                actions.appendChild(el("div", { className: "nw-row-error", text: rs.error }));
            var mode = p.Mode || "enforce";
            tbody.appendChild(el("tr", { "data-port": port, "data-path": path },
                                 el("td", { className: "nw-mono" }, el("b", { text: port })),
                                 el("td", { text: p.FilterName }),
                                 el("td", { className: "nw-mono nw-params", text: params.join("\n") || "—" }),
                                 el("td", { className: "nw-mono nw-learned" },
                                    l === null ? el("span", { className: "nw-small", text: "not reported" })
                                        : (l.length ? l.join(", ") : el("span", { className: "nw-small", text: "none yet" }))),
                                 el("td", null,
                                    el("span", { className: "nw-badge nw-mode" + (mode === "enforce" ? " nw-active-state" : mode === "drop-all" ? " nw-bad" : ""), text: mode }),
                                    p.Reason ? el("div", { className: "nw-small", text: p.Reason }) : null),
                                 actions));
        });
    }

    function deleteBinding(path, port) {
        var rs = ui.bindingRow[port];
        rs.confirm = false;
        rs.error = null;
        call(path, BINDING, "Delete", [])
                .then(function () { reload() }, function (err) {
                    rs.error = explain(err, "delete the binding of " + port);
                    renderBindings();
                });
    }

    function createBinding() {
        var port = $("binding-port").value.trim();
        var mac = $("binding-mac").value.trim();
        var filter = $("binding-filter").value;
        var params = $("binding-params").value.split("\n").map(function (s) { return s.trim() })
                .filter(function (s) { return s });
        var xml = "<filterbinding>\n  <owner><name>" + xmlEscape(port) + "</name><uuid>" + newUUID() + "</uuid></owner>\n" +
            "  <portdev name='" + xmlEscape(port) + "'/>\n  <mac address='" + xmlEscape(mac) + "'/>\n" +
            "  <filterref filter='" + xmlEscape(filter) + "'>\n";
        params.forEach(function (kv) {
            var i = kv.indexOf("=");
            var k = i < 0 ? kv : kv.slice(0, i);
            var v = i < 0 ? "" : kv.slice(i + 1);
            xml += "    <parameter name='" + xmlEscape(k.trim()) + "' value='" + xmlEscape(v.trim()) + "'/>\n";
        });
        xml += "  </filterref>\n</filterbinding>\n";
        showError("binding-error", null);
        call(ROOT, MANAGER, "NWFilterBindingCreateXML", [xml, 0], "su")
                .then(function () {
                    $("binding-port").value = "";
                    $("binding-mac").value = "";
                    $("binding-params").value = "";
                    $("binding-create-box").open = false;
                    reload();
                }, function (err) {
                    showError("binding-error", explain(err, "bind " + (port || "the port") + " to filter “" + filter + "”"));
                });
    }

    /* ---- views ---- */

    function render() {
        renderNetworks();
        renderFilters();
        renderBindings();
    }

    function showView(view) {
        ui.view = view;
        ["networks", "filters", "bindings"].forEach(function (v) {
            $("view-" + v).hidden = v !== view;
            $("tab-" + v).classList.toggle("nw-active", v === view);
            $("tab-" + v).setAttribute("aria-selected", v === view ? "true" : "false");
        });
    }

    /* ---- signals ---- */

    function onSignal(path, iface, signal, args) {
        if (iface === PROPS && signal === "PropertiesChanged") {
            var changed = unvAll(args[1]);
            if (args[0] === MANAGER && path === ROOT) {
                Object.assign(state.manager, changed);
                if ((args[2] || []).length)
                    loadManager();
                else
                    renderStatus();
                return;
            }
            reload();
            return;
        }
        if (iface === MANAGER && signal === "NWFilterEvent")
            state.filterXML = {};
        if (iface === MANAGER || iface === "org.freedesktop.DBus.ObjectManager")
            reload();
    }

    function connect() {
        client = cockpit.dbus(BUS_NAME, { bus: "system", superuser: "try" });
        client.addEventListener("close", function (ev, options) {
            var problem = options && options.problem;
            showAlert(problem === "not-found"
                ? "The netwarden service is not running."
                : "The connection to netwarden closed" + (problem ? ": " + problem : "") + ".");
        });
        client.subscribe({ path_namespace: ROOT }, onSignal);
        // The daemon restarting (a new owner of the name) brings a full
        // read again.
        client.addEventListener("owner", function (ev, owner) {
            if (owner) {
                state.filterXML = {};
                loadManager();
                reload();
            }
        });
        return Promise.all([loadManager(), reload()]).then(function () {
            document.body.setAttribute("data-loaded", "true");
        });
    }

    function init() {
        document.querySelectorAll(".nw-tab").forEach(function (tab) {
            tab.addEventListener("click", function () { showView(tab.getAttribute("data-view")) });
        });
        $("network-define").addEventListener("click", defineNetwork);
        $("filter-new").addEventListener("click", newFilter);
        $("filter-edit").addEventListener("click", editFilter);
        $("filter-define").addEventListener("click", defineFilter);
        $("filter-cancel").addEventListener("click", function () {
            ui.filterEditing = false;
            showError("filter-error", null);
            renderFilterDetail();
        });
        $("filter-undefine").addEventListener("click", function () { ui.filterConfirm = true; renderFilterDetail() });
        $("filter-undefine-no").addEventListener("click", function () { ui.filterConfirm = false; renderFilterDetail() });
        $("filter-undefine-yes").addEventListener("click", undefineFilter);
        $("binding-create").addEventListener("click", createBinding);
        showView("networks");
        connect();
        cockpit.transport.wait(function () {
            document.body.setAttribute("data-transport", "ready");
        });
    }

    document.addEventListener("DOMContentLoaded", init);
}());
