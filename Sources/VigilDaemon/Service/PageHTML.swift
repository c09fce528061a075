/// `GET /`: one self-contained page (inline CSS and script, no outside assets) that draws
/// `/page.json` and fetches it again every 5 s. Everything from the gateway is put in with
/// `textContent` (topics and messages come from sensors and rule files, never markup).
/// `data-renders` on `<body>` counts the renders and `data-error` holds a script error,
/// for `scripts/check-page`.
enum PageHTML {
    static let refreshSeconds = 5

    static let text = #"""
<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>vigil</title>
<style>
:root{--blue:#1f6fd1;--yellow:#e0b400;--orange:#ef7d00;--red:#d42a2a;--ok:#2e8b57;--mute:#777;font:15px/1.35 system-ui,sans-serif}
body{margin:0;padding:8px;background:#f5f5f3;color:#222}
h1{font-size:1.2em;margin:4px 0}h2{font-size:1.05em;margin:14px 0 6px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:6px}
.card{background:#fff;border-radius:6px;padding:6px 8px;box-shadow:0 1px 2px #0002}
.card b{display:block;font-size:.75em;color:var(--mute);font-weight:normal}
.bad{color:var(--red);font-weight:bold}.good{color:var(--ok)}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.9em}
td,th{padding:3px 5px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
.lv{display:inline-block;padding:0 6px;border-radius:3px;color:#fff;font-size:.85em}
.lv-blue{background:var(--blue)}.lv-yellow{background:var(--yellow);color:#222}.lv-orange{background:var(--orange)}.lv-red{background:var(--red)}
tr.a-blue{box-shadow:inset 4px 0 var(--blue)}tr.a-yellow{box-shadow:inset 4px 0 var(--yellow)}
tr.a-orange{box-shadow:inset 4px 0 var(--orange)}tr.a-red{box-shadow:inset 4px 0 var(--red)}td:first-child{padding-left:8px}
.stale{color:var(--mute);font-style:italic}table.ser{table-layout:fixed}table.ser td:nth-child(1){width:34%;word-break:break-all}table.ser td:nth-child(2){width:22%}table.ser td:nth-child(3){width:12%}table.ser td:nth-child(4){width:132px}svg{vertical-align:middle}
input{width:100%;box-sizing:border-box;padding:6px;font-size:1em;margin-bottom:6px}
#err{color:var(--red)}.num{text-align:right;white-space:nowrap}.small{font-size:.8em;color:var(--mute)}
@media(max-width:600px){.hide-s{display:none}table.ser td:nth-child(1){width:42%}
#alerts tr,#transitions tr,#rejects tr{display:block;border-bottom:1px solid #ddd;padding:2px 0}
#alerts td,#transitions td,#rejects td{display:inline-block;border:0;padding:1px 4px}
#alerts td:last-child,#transitions td:last-child,#rejects td:last-child{display:block}#alerts tr.small{display:none}}
</style></head>
<body data-renders="0">
<h1 id="title">vigil</h1><div class="small" id="when"></div><div id="err"></div>
<h2>Health</h2><div class="grid" id="health"></div>
<h2>Active alerts</h2><table id="alerts"></table>
<h2>Last transitions</h2><table id="transitions"></table>
<h2>Series</h2><input id="filter" placeholder="filter series (network/site/device/metric)" autocomplete="off">
<div id="series"></div>
<h2>Rejects</h2><div id="rejcounts" class="grid"></div><table id="rejects"></table>
<script>
"use strict";
var last=null,good=null,serverFilter=false,timer=null;
function el(t,cls,txt){var e=document.createElement(t);if(cls)e.className=cls;if(txt!=null)e.textContent=String(txt);return e}
function clear(e){while(e.firstChild)e.removeChild(e.firstChild);return e}
function num(v){if(v==null)return"–";var a=Math.abs(v);return a>=1e6||(a<1e-3&&a>0)?v.toExponential(3):String(Math.round(v*1000)/1000)}
function bytes(b){if(b==null)return"–";var u=["B","KiB","MiB","GiB","TiB"],i=0;while(b>=1024&&i<4){b/=1024;i++}return(Math.round(b*10)/10)+" "+u[i]}
function dur(s){if(s==null)return"–";s=Math.max(0,s);if(s<90)return Math.round(s)+" s";if(s<5400)return Math.round(s/60)+" min";if(s<172800)return Math.round(s/3600)+" h";return Math.round(s/86400)+" d"}
function ms(v){return v==null?"–":v<1000?num(v)+" ms":dur(v/1000)}
function ago(t,at){return t?dur((Date.parse(at||last.generated_at)-Date.parse(t))/1000)+" ago":"–"}
function card(p,label,value,cls){var c=el("div","card");c.appendChild(el("b",null,label));c.appendChild(el("span",cls||"",value));p.appendChild(c)}
function row(tb,cells,cls){var r=el("tr",cls);cells.forEach(function(c){if(c instanceof Node){var d=el("td");d.appendChild(c);r.appendChild(d)}else r.appendChild(el("td",null,c))});tb.appendChild(r);return r}
function level(l){return l?el("span","lv lv-"+l,l):el("span")}
function spark(pts,lvl){var ns="http://www.w3.org/2000/svg",w=120,h=24,s=document.createElementNS(ns,"svg");s.setAttribute("width",w);s.setAttribute("height",h);
 var v=pts.filter(function(x){return x!=null});if(!v.length)return s;var lo=Math.min.apply(null,v),hi=Math.max.apply(null,v),r=hi-lo||1,d="",pen=false;
 pts.forEach(function(x,i){if(x==null){pen=false;return}var px=(i*(w-2)/(pts.length-1||1)+1).toFixed(1),py=(h-2-(x-lo)/r*(h-4)).toFixed(1);d+=(pen?"L":"M")+px+" "+py+(pen?"":"h0");pen=true});
 var p=document.createElementNS(ns,"path");p.setAttribute("d",d);p.setAttribute("fill","none");p.setAttribute("stroke",lvl?"var(--"+lvl+")":"#456");p.setAttribute("stroke-width","2");p.setAttribute("stroke-linecap","round");s.appendChild(p);return s}
function render(d){
 if(d.error&&!d.health){document.getElementById("err").textContent="page: "+d.error;return}
 if(!d.buffer_unread)good=d;
 else if(good){["alerts","transitions","series","series_more","series_total"].forEach(function(k){d[k]=good[k]});d.rejects={by_reason:d.rejects.by_reason,latest:good.rejects.latest};d.stale_as_of=good.generated_at}
 last=d;if(d.series_more>0)serverFilter=true;
 document.title="vigil "+d.gateway+(d.alerts.length?" ("+d.alerts.length+" alerts)":"");
 document.getElementById("title").textContent="vigil · "+d.gateway;
 document.getElementById("when").textContent="as of "+d.generated_at+" · refreshes every 5 s";
 document.getElementById("err").textContent=!d.error?"":!d.buffer_unread?"page: "+d.error:"buffer: "+d.error+(d.stale_as_of?" · alerts, series and rejects below are from "+d.stale_as_of+" ("+ago(d.stale_as_of,d.generated_at)+")":" · alerts, series and rejects unknown");
 var h=d.health,g=clear(document.getElementById("health"));
 card(g,"local broker "+h.local_broker,h.local_connected?"connected":"DISCONNECTED",h.local_connected?"good":"bad");
 if(h.upstream){card(g,"upstream "+h.upstream.broker,h.upstream.connected?"connected":"DISCONNECTED",h.upstream.connected?"good":"bad");
  card(g,"backlog",h.upstream.backlog+" msgs"+(h.upstream.backlog_oldest_seconds!=null?", oldest "+dur(h.upstream.backlog_oldest_seconds):""))}
 else card(g,"upstream","not configured");
 card(g,"ingest rate",h.ingest_rate!=null?num(h.ingest_rate)+" /s":"–");
 card(g,"publish→stored p50 / p99",ms(h.publish_to_stored_ms.p50)+" / "+ms(h.publish_to_stored_ms.p99));
 card(g,"buffer",bytes(h.buffer_bytes)+" of "+bytes(h.buffer_max_bytes)+" ("+Math.round(100*h.buffer_bytes/Math.max(1,h.buffer_max_bytes))+" %)",h.buffer_bytes>0.9*h.buffer_max_bytes?"bad":"");
 card(g,"readings in buffer",String(h.buffer_rows));
 card(g,"disk free (state)",bytes(h.state_dir_free_bytes),h.ingest_paused?"bad":"");
 card(g,"runtime dir free",bytes(h.runtime_dir_free_bytes));
 var off=h.clock_offset_seconds;card(g,"clock offset",(Math.abs(off)<0.001?"0":num(off))+" s",Math.abs(off)>=1?"bad":"");
 card(g,"uptime",dur(h.uptime_seconds));card(g,"version",h.version+" ("+h.commit+")");
 if(h.ingest_paused)card(g,"ingest","PAUSED: disk full","bad");
 var a=clear(document.getElementById("alerts"));
 if(d.buffer_unread&&!d.stale_as_of)row(a,["unknown: the buffer could not be read"]);
 else if(!d.alerts.length)row(a,["no active alert"]);
 else{row(a,["level","series","value","threshold","since","rule","message"]).className="small";
  d.alerts.forEach(function(x){row(a,[level(x.level),x.series,num(x.value),num(x.threshold),ago(x.since),x.rule,x.message],"a-"+x.level)})}
 var t=clear(document.getElementById("transitions"));
 if(!d.transitions.length)row(t,[d.buffer_unread&&!d.stale_as_of?"unknown":"none yet"]);
 d.transitions.forEach(function(x){row(t,[ago(x.at),x.state,level(x.level),x.series,num(x.value),x.message],"a-"+x.level)});
 drawSeries();
 var rc=clear(document.getElementById("rejcounts")),any=false;
 Object.keys(d.rejects.by_reason).sort().forEach(function(k){if(d.rejects.by_reason[k]>0){any=true;card(rc,k,String(d.rejects.by_reason[k]),"bad")}});
 if(!any)card(rc,"rejected since start","0","good");
 var rj=clear(document.getElementById("rejects"));
 d.rejects.latest.forEach(function(x){row(rj,[ago(x.at),x.reason,x.topic,x.detail])});
}
function drawSeries(){
 if(!last)return;var f=document.getElementById("filter").value.toLowerCase(),box=clear(document.getElementById("series")),groups={},order=[];
 last.series.forEach(function(s){if(f&&s.path.toLowerCase().indexOf(f)<0)return;var k=s.network+"/"+s.site;if(!groups[k]){groups[k]=[];order.push(k)}groups[k].push(s)});
 if(!order.length)box.appendChild(el("div","small",last.buffer_unread&&!last.stale_as_of?"unknown: the buffer could not be read":f?"no series matches":"no series yet"));
 if(last.series_more>0)box.appendChild(el("div","small",last.series_more+" more series not shown (of "+last.series_total+"): type in the filter to find them"));
 order.forEach(function(k){box.appendChild(el("h3","small",k));var tb=el("table","ser");
  groups[k].forEach(function(s){var r=row(tb,[s.path.split("/").slice(2).join("/"),(s.latest!=null?num(s.latest):"–")+(s.unit?" "+s.unit:""),s.age_seconds!=null?dur(s.age_seconds):"–",spark(s.spark,s.alert),s.alert?level(s.alert):(s.stale?el("span","stale","stale"):"")],(s.alert?"a-"+s.alert:"")+(s.stale?" stale":""));
   r.dataset.series=s.path;r.children[3].className="hide-s"});box.appendChild(tb)})}
document.getElementById("filter").addEventListener("input",function(){drawSeries();if(serverFilter){clearTimeout(timer);timer=setTimeout(refresh,300)}});
function refresh(){var f=document.getElementById("filter").value;fetch("page.json"+(serverFilter&&f?"?series="+encodeURIComponent(f):""),{credentials:"same-origin",cache:"no-store"})
 .then(function(r){if(r.status==401)throw new Error("HTTP 401: log in again with /?token=…");if(!r.ok)throw new Error("HTTP "+r.status);return r.json()})
 .then(function(d){render(d);document.body.dataset.renders=String(Number(document.body.dataset.renders)+1)})
 .catch(function(e){var m=String(e&&e.message);document.getElementById("err").textContent="cannot refresh: "+m;if(!/^HTTP |fetch|network/i.test(m))document.body.dataset.error=m})}
window.addEventListener("error",function(e){document.body.dataset.error=String(e.message)});
refresh();setInterval(refresh,5000);
</script></body></html>
"""#

    static let bytes = Array(text.utf8)
}
