/* Licensed under the Apache License, Version 2.0; see LICENSE. */

#include <apr_strings.h>
#include "scep_caps.h"

const char *scep_caps_text(apr_pool_t *p, const scep_caps_t *caps)
{
    /* Order follows RFC 8894 Table 7; clients match each line exactly. */
    return apr_pstrcat(p,
                       "AES\n",
                       caps->legacy ? "DES3\n" : "",
                       caps->next_ca ? "GetNextCACert\n" : "",
                       "POSTPKIOperation\n",
                       caps->renewal ? "Renewal\n" : "",
                       caps->legacy ? "SHA-1\n" : "",
                       "SHA-256\n",
                       "SHA-384\n",
                       "SHA-512\n",
                       "SCEPStandard\n",
                       NULL);
}
