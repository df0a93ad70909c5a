// response_mode=form_post: submit the authorization response to the application at once
// (served as a file so that the page needs no inline script under its CSP).
document.getElementById("form-post").submit();
