<%@ page contentType="application/json; charset=UTF-8" session="false" trimDirectiveWhitespaces="true"
    import="java.io.InputStream,java.security.MessageDigest,java.util.Enumeration,java.util.HexFormat" %>
<%!
  // Test webapp for Dayshift's AJP tests: answers with JSON describing the request it received.
  // Query: status=N sleep=ms session=1 setcookie=name=value header=name:value attrs=a,b
  static String q(String s) {
    if (s == null) return "null";
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
      else b.append(c);
    }
    return b.append('"').toString();
  }
%>
<%
  // Read the body before anything looks at parameters, so a form body is not parsed away.
  MessageDigest sha = MessageDigest.getInstance("SHA-256");
  long bodyBytes = 0;
  InputStream in = request.getInputStream();
  byte[] buf = new byte[65536];
  for (int n; (n = in.read(buf)) > 0; ) { sha.update(buf, 0, n); bodyBytes += n; }
  String sleep = request.getParameter("sleep");
  if (sleep != null) Thread.sleep(Long.parseLong(sleep));
  String status = request.getParameter("status");
  if (status != null) response.setStatus(Integer.parseInt(status));
  String setcookie = request.getParameter("setcookie");
  if (setcookie != null) {
    String[] kv = setcookie.split("=", 2);
    response.addCookie(new jakarta.servlet.http.Cookie(kv[0], kv[1]));
  }
  String header = request.getParameter("header");
  if (header != null) {
    String[] kv = header.split(":", 2);
    response.addHeader(kv[0], kv[1]);
  }
  String sessionId = null;
  if ("1".equals(request.getParameter("session"))) {
    jakarta.servlet.http.HttpSession s = request.getSession(true);
    Integer hits = (Integer) s.getAttribute("hits");
    hits = hits == null ? 1 : hits + 1;
    s.setAttribute("hits", hits);
    sessionId = s.getId();
    response.setHeader("X-Session-Hits", String.valueOf(hits));
  }
  StringBuilder o = new StringBuilder("{");
  o.append("\"method\":").append(q(request.getMethod()));
  o.append(",\"uri\":").append(q(request.getRequestURI()));
  o.append(",\"query\":").append(q(request.getQueryString()));
  o.append(",\"protocol\":").append(q(request.getProtocol()));
  o.append(",\"scheme\":").append(q(request.getScheme()));
  o.append(",\"secure\":").append(request.isSecure());
  o.append(",\"serverName\":").append(q(request.getServerName()));
  o.append(",\"serverPort\":").append(request.getServerPort());
  o.append(",\"remoteAddr\":").append(q(request.getRemoteAddr()));
  o.append(",\"remotePort\":").append(request.getRemotePort());
  o.append(",\"contentLength\":").append(request.getContentLengthLong());
  o.append(",\"bodyBytes\":").append(bodyBytes);
  o.append(",\"bodySha256\":").append(q(HexFormat.of().formatHex(sha.digest())));
  o.append(",\"sessionId\":").append(q(sessionId));
  o.append(",\"requestedSessionId\":").append(q(request.getRequestedSessionId()));
  o.append(",\"headers\":{");
  boolean first = true;
  for (Enumeration<String> names = request.getHeaderNames(); names.hasMoreElements(); ) {
    String name = names.nextElement();
    StringBuilder values = new StringBuilder("[");
    boolean firstValue = true;
    for (Enumeration<String> vs = request.getHeaders(name); vs.hasMoreElements(); ) {
      values.append(firstValue ? "" : ",").append(q(vs.nextElement()));
      firstValue = false;
    }
    o.append(first ? "" : ",").append(q(name.toLowerCase())).append(':').append(values).append(']');
    first = false;
  }
  o.append("},\"cookies\":{");
  first = true;
  jakarta.servlet.http.Cookie[] cookies = request.getCookies();
  if (cookies != null) for (jakarta.servlet.http.Cookie c : cookies) {
    o.append(first ? "" : ",").append(q(c.getName())).append(':').append(q(c.getValue()));
    first = false;
  }
  o.append("},\"attributes\":{");
  String attrs = request.getParameter("attrs");
  if (attrs != null) {
    first = true;
    for (String name : attrs.split(",")) {
      Object v = request.getAttribute(name);
      o.append(first ? "" : ",").append(q(name)).append(':').append(q(v == null ? null : String.valueOf(v)));
      first = false;
    }
  }
  o.append("}}");
  out.print(o);
%>
