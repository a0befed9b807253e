<%@ page contentType="text/plain; charset=ISO-8859-1" session="false" trimDirectiveWhitespaces="true" %>
<%
  // A large (or slow) download: size=N bytes of "abc…xyz" repeated; delay=ms between 64 KiB blocks.
  long size = Long.parseLong(request.getParameter("size"));
  String delayParam = request.getParameter("delay");
  long delay = delayParam == null ? 0 : Long.parseLong(delayParam);
  response.setContentLengthLong(size);
  char[] block = new char[65536];
  for (int i = 0; i < block.length; i++) block[i] = (char) ('a' + i % 26);
  for (long sent = 0; sent < size; ) {
    int n = (int) Math.min(block.length, size - sent);
    out.write(block, 0, n);
    sent += n;
    if (delay > 0) { out.flush(); Thread.sleep(delay); }
  }
%>
