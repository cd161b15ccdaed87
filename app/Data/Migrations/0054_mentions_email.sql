-- Whether a text (a JSON body, as text) names an email address as a whole, case-insensitively: "an@x.com" is not found in
-- "joan@x.com", "o'brien"-style addresses around it, nor "an@x.com.au", and the address's regex metacharacters are taken
-- literally (only they are escaped: a backslash before a letter, "é" too, is an escape the engine refuses). Why not
-- LIKE '%' || email || '%': that is a substring match in which '_' matches any character, so erasing one customer's email
-- erased other customers' staged backfill lines, delivery bodies and Stripe events whose addresses contained it.
CREATE FUNCTION mentions_email(body text, email text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(body) ~ ('(^|[^[:alnum:]._%+''&/=!#$*?^`{|}~-])' || regexp_replace(lower(email), '([.^$*+?(){}|\[\]\\-])', '\\\1', 'g')
                          || '($|[^[:alnum:].-]|\.($|[^[:alnum:]-]))')
$$;
